package mount

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// mountEntry is one mount of /proc/self/mountinfo.
type mountEntry struct {
	dir    string // where it is mounted
	fstype string // e.g. fuse.secretsfs
	source string // e.g. secretsfs, or the fstab entry's first field
	dev    string // MAJ:MIN of the filesystem: a FUSE mount's own connection
}

// topMount returns the mount on top of dir in a mountinfo file (the last
// one listed there: a later mount hides the earlier ones), if any.
func topMount(mountinfo []byte, dir string) (mountEntry, bool) {
	var top mountEntry
	found := false
	for _, line := range bytes.Split(mountinfo, []byte("\n")) {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS
		f := strings.Fields(string(line))
		if len(f) < 10 || unescapeMountinfo(f[4]) != dir {
			continue
		}
		for i := 6; i+2 < len(f); i++ {
			if f[i] == "-" {
				top, found = mountEntry{dir: dir, fstype: f[i+1], source: unescapeMountinfo(f[i+2]), dev: f[2]}, true
				break
			}
		}
	}
	return top, found
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space,
// \011, \012, \134).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountedOn reads this process's mountinfo for the mount on top of dir.
func mountedOn(dir string) (mountEntry, bool) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return mountEntry{}, false
	}
	return topMount(data, dir)
}
