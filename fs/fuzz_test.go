package fs

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// FuzzSecretNamePath: a secret name becomes a directory path and back. A
// name is shown exactly when every "/"-separated segment is a valid file
// name; then joining the segments gives the name again, the index finds the
// secret at that path and every parent lists the next segment, and
// splitPath undoes join.
func FuzzSecretNamePath(f *testing.F) {
	for _, s := range []string{"prod/db", "db", "a/b/c", "a//b", "/a", "a/", "a/../b", ".", "..", "a/./b",
		"x\x00y", "tab\tname", "é/ü", strings.Repeat("n", 255) + "/x", strings.Repeat("n", 256), "a/b/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		segs, ok := splitSecretName(name)
		wantOK := true
		for _, s := range strings.Split(name, "/") {
			if s == "" || s == "." || s == ".." || len(s) > 255 || strings.ContainsRune(s, 0) {
				wantOK = false
			}
		}
		if ok != wantOK {
			t.Fatalf("splitSecretName(%q) ok = %v, want %v", name, ok, wantOK)
		}
		if dir, dirOK := DirOf(name); dirOK != ok || (ok && dir != name) {
			t.Fatalf("DirOf(%q) = %q, %v; splitSecretName ok = %v", name, dir, dirOK, ok)
		}
		ix := newIndex()
		added := ix.add(SecretRef{Name: name, ID: "id:" + name})
		if added != ok {
			t.Fatalf("index.add(%q) = %v, splitSecretName ok = %v", name, added, ok)
		}
		if !ok {
			if len(ix.paths()) != 1 {
				t.Fatalf("a refused name %q changed the tree: %v", name, ix.paths())
			}
			return
		}
		path := ""
		for _, s := range segs {
			if !validFileName(s) {
				t.Fatalf("segment %q of %q is not a valid file name", s, name)
			}
			_, children, exists := ix.dir(path)
			if !exists || !slices.Contains(children, s) {
				t.Fatalf("directory %q does not list %q (children %v)", path, s, children)
			}
			next := join(path, s)
			if d, n := splitPath(next); d != path || n != s {
				t.Fatalf("splitPath(%q) = %q, %q; want %q, %q", next, d, n, path, s)
			}
			path = next
		}
		if path != name {
			t.Fatalf("the segments of %q join to %q", name, path)
		}
		ref, _, exists := ix.dir(path)
		if !exists || ref == nil || ref.Name != name || ref.ID != "id:"+name {
			t.Fatalf("the index shows %+v at %q", ref, path)
		}
	})
}

// FuzzJSONKeys: a secret's value becomes key files. Every key shown is a
// valid file name and a top-level key of the object; a string value is its
// decoded text, any other value compact JSON; nothing but an object gives
// files.
func FuzzJSONKeys(f *testing.F) {
	for _, s := range []string{`{"username":"app","password":"p4ss"}`, `{"n":1.50,"b":true,"z":null,"o":{"a": 1},"a":[1, "x"]}`,
		` {"..":"x","a/b":"x","":"x","ok":"\u00e9\n"}`, `{"dup":"1","dup":"2"}`, `["a"]`, `"s"`, `{"broken":`, "plain", "",
		"{\"bad\xffutf8\":\"v\xfe\"}", `{"x":"\ud800"}`, `{"deep":{"deeper":{"deepest":[[[]]]}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, ok := jsonKeys(data)
		var obj map[string]json.RawMessage
		isObject := json.Unmarshal(data, &obj) == nil && obj != nil
		if ok != isObject {
			t.Fatalf("jsonKeys ok = %v for %q; an object: %v", ok, data, isObject)
		}
		if !ok {
			if keys != nil {
				t.Fatalf("files %v from a value that is not an object", keys)
			}
			return
		}
		for k, content := range keys {
			if !validFileName(k) {
				t.Fatalf("key %q is shown but is not a valid file name", k)
			}
			raw, found := obj[k]
			if !found {
				t.Fatalf("key %q is shown but is not in the object", k)
			}
			var s string
			if len(raw) > 0 && raw[0] == '"' {
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatalf("key %q: %v", k, err)
				}
				if string(content) != s {
					t.Fatalf("key %q holds %q, want the string %q", k, content, s)
				}
				continue
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, raw); err != nil {
				t.Fatalf("key %q: %v", k, err)
			}
			if !bytes.Equal(content, compact.Bytes()) || !json.Valid(content) {
				t.Fatalf("key %q holds %q, want the compact JSON %q", k, content, compact.Bytes())
			}
		}
		for k := range obj {
			if _, shown := keys[k]; validFileName(k) && !shown {
				t.Fatalf("key %q is a valid file name but is not shown", k)
			}
		}
		// A key file's open cuts its bytes out where the key was found in
		// the version (findKeySpan): the same bytes.
		for k, content := range keys {
			got, found := findKeySpan("v1", data, k).content(data)
			if !found || !bytes.Equal(got, content) {
				t.Fatalf("key %q: the span gives %q (found %v), jsonKeys %q", k, got, found, content)
			}
		}
		if _, found := findKeySpan("v1", data, "no such key \x00").content(data); found {
			t.Fatal("a key the object lacks was found")
		}
	})
}
