//go:build !race

package mount

// raceEnabled is true in builds with the race detector.
const raceEnabled = false
