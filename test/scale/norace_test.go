//go:build !race

package scale

// raceEnabled is true in a race-detector build, whose emulator is too slow
// for the large sizes.
const raceEnabled = false
