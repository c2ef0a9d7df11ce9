package fs

import (
	"bytes"
	"encoding/json"
	"math"
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

// DirOf is the one rule for where the default layout shows a secret: the
// directory, relative to the mount and "/"-separated, of a secret with this
// name. ok is false for a name the tree hides, one with a segment that
// cannot be a file name ("/a", "a/", "a//b", "a/./b", "a/../b", a NUL, a
// segment over 255 bytes); such a name is never cleaned into another path.
func DirOf(name string) (dir string, ok bool) {
	if _, ok := splitSecretName(name); !ok {
		return "", false
	}
	return name, true
}

// keysFollow reports whether a move of stage moves the JSON key files: they
// show the default stage's value.
func keysFollow(stage, defaultStage string) bool { return stage == defaultStage }

// Snapshot is one side of a stage's move, as ChangedFiles compares it.
type Snapshot struct {
	// Exists is false when the stage pointed at no version (before it
	// appeared, or after it was removed).
	Exists bool
	// Known is false when the value is not at hand (a version the caller
	// no longer holds): every file it could give counts as changed.
	Known bool
	Data  []byte
}

// ChangedFiles lists the names, in a secret's directory of the default
// layout, whose bytes a move of stage from old to new changes: the stage's
// file, and when the stage is the default one, each JSON key file that
// appeared, went or changed (a key named like the stage is hidden by the
// stage's file). Only valid file names are listed, sorted.
func ChangedFiles(stage, defaultStage string, old, new Snapshot) []string {
	if !validFileName(stage) {
		return nil
	}
	var names []string
	if !old.Known || !old.Exists || !new.Exists || !bytes.Equal(old.Data, new.Data) {
		names = append(names, stage)
	}
	if keysFollow(stage, defaultStage) {
		var newKeys, oldKeys map[string][]byte
		if new.Exists {
			newKeys, _ = jsonKeys(new.Data)
		}
		if old.Known && old.Exists {
			oldKeys, _ = jsonKeys(old.Data)
		}
		for k, nv := range newKeys {
			if ov, ok := oldKeys[k]; k != stage && (!old.Known || !ok || !bytes.Equal(ov, nv)) {
				names = append(names, k)
			}
		}
		for k := range oldKeys {
			if _, ok := newKeys[k]; k != stage && !ok {
				names = append(names, k)
			}
		}
	}
	sort.Strings(names)
	return names
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
		if b, ok := keyContent(raw); ok {
			keys[k] = b
		}
	}
	return keys, true
}

// keyContent is the file a JSON key's raw value gives: a string as its
// bytes, any other value as compact JSON.
func keyContent(raw []byte) ([]byte, bool) {
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return []byte(s), true
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

// keySpan is where one JSON key's raw value lies in one version's value:
// found once per version (a version's bytes never change), so that a key
// file's lookups and opens cut its bytes out instead of parsing the whole
// value each time. It holds offsets, never a secret's bytes.
type keySpan struct {
	versionID  string
	start, end int32 // data[start:end] is the key's raw value (a value is at most 64 KiB)
	found      bool  // the value is a JSON object with this key
}

// findKeySpan finds key in data as jsonKeys would: the last of its
// occurrences in a JSON object; found is false when data is not a JSON
// object or has no such key.
func findKeySpan(versionID string, data []byte, key string) *keySpan {
	sp := &keySpan{versionID: versionID}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' || len(data) > math.MaxInt32 || !json.Valid(trimmed) {
		return sp
	}
	base := len(data) - len(trimmed)
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // {
		return sp
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return &keySpan{versionID: versionID}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return &keySpan{versionID: versionID}
		}
		if k, _ := t.(string); k == key {
			end := base + int(dec.InputOffset())
			sp.start, sp.end, sp.found = int32(end-len(raw)), int32(end), true
		}
	}
	return sp
}

// content is the key file's bytes in data, the version the span was found
// in.
func (sp *keySpan) content(data []byte) ([]byte, bool) {
	if !sp.found || int(sp.end) > len(data) {
		return nil, false
	}
	return keyContent(data[sp.start:sp.end])
}

// entryKind says what a name in a secret's directory is.
type entryKind int

const (
	kindStage  entryKind = iota // a staging label's file
	kindDir                     // a child path segment's directory
	kindKey                     // a JSON key's file
	kindMapped                  // a mapped file (mapped.go)
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
