package fs

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// validFileName reports whether s can be a file name: not empty, not "."
// or "..", no "/" or NUL, at most 255 bytes.
func validFileName(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= 255 && !strings.ContainsAny(s, "/\x00")
}

// splitSecretName splits a secret name into its directory segments. ok is
// false when a segment cannot be a file name ("a//b", "/a", "a/..").
func splitSecretName(name string) (segs []string, ok bool) {
	segs = strings.Split(name, "/")
	for _, s := range segs {
		if !validFileName(s) {
			return nil, false
		}
	}
	return segs, true
}

// jsonKeys returns the files a JSON secret's top-level keys give: a string
// value as its bytes, any other value as compact JSON. ok is false when the
// value is not a JSON object. Keys that are not valid file names are left
// out.
func jsonKeys(data []byte) (keys map[string][]byte, ok bool) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &obj); err != nil {
		return nil, false
	}
	keys = make(map[string][]byte, len(obj))
	for k, raw := range obj {
		if !validFileName(k) {
			continue
		}
		var s string
		if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
			keys[k] = []byte(s)
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			continue
		}
		keys[k] = buf.Bytes()
	}
	return keys, true
}

// entryKind says what a name in a secret's directory is.
type entryKind int

const (
	kindStage entryKind = iota // a staging label's file
	kindDir                    // a child path segment's directory
	kindKey                    // a JSON key's file
)

// dirEntry is one name in a directory.
type dirEntry struct {
	name string
	kind entryKind
}

// mergeEntries resolves name clashes in a directory: staging labels first,
// then child path segments, then JSON keys; names that are not valid file
// names are left out. The result is sorted by name.
func mergeEntries(stages, dirs, keys []string) []dirEntry {
	seen := make(map[string]bool, len(stages)+len(dirs)+len(keys))
	var out []dirEntry
	add := func(names []string, kind entryKind) {
		for _, n := range names {
			if !validFileName(n) || seen[n] {
				continue
			}
			seen[n] = true
			out = append(out, dirEntry{name: n, kind: kind})
		}
	}
	add(stages, kindStage)
	add(dirs, kindDir)
	add(keys, kindKey)
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
