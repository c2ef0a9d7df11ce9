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
	root   string // the path in the filesystem that is mounted: "/", or a bind's
}

// parseMountinfo parses one line of a mountinfo file:
// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS.
func parseMountinfo(line []byte) (mountEntry, bool) {
	f := strings.Fields(string(line))
	if len(f) < 10 {
		return mountEntry{}, false
	}
	for i := 6; i+2 < len(f); i++ {
		if f[i] == "-" {
			return mountEntry{dir: unescapeMountinfo(f[4]), fstype: f[i+1], source: unescapeMountinfo(f[i+2]), dev: f[2], root: unescapeMountinfo(f[3])}, true
		}
	}
	return mountEntry{}, false
}

// topMount returns the mount on top of dir in a mountinfo file (the last
// one listed there: a later mount hides the earlier ones), if any.
func topMount(mountinfo []byte, dir string) (mountEntry, bool) {
	var top mountEntry
	found := false
	for _, line := range bytes.Split(mountinfo, []byte("\n")) {
		if m, ok := parseMountinfo(line); ok && m.dir == dir {
			top, found = m, true
		}
	}
	return top, found
}

// topMountsBelow returns the mount on top of each mount point strictly
// below dir in a mountinfo file, in the order they are listed.
func topMountsBelow(mountinfo []byte, dir string) []mountEntry {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	at := map[string]int{}
	var tops []mountEntry
	for _, line := range bytes.Split(mountinfo, []byte("\n")) {
		m, ok := parseMountinfo(line)
		if !ok || !strings.HasPrefix(m.dir, prefix) {
			continue
		}
		if i, seen := at[m.dir]; seen {
			tops[i] = m
			continue
		}
		at[m.dir] = len(tops)
		tops = append(tops, m)
	}
	return tops
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
