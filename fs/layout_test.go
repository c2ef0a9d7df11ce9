package fs

import (
	"slices"
	"strings"
	"testing"
)

func TestValidFileName(t *testing.T) {
	for s, want := range map[string]bool{
		"ok": true, "with space": true, "a.b": true, "...": true,
		"": false, ".": false, "..": false, "a/b": false, "a\x00b": false,
		strings.Repeat("x", 255): true, strings.Repeat("x", 256): false,
	} {
		if got := validFileName(s); got != want {
			t.Errorf("validFileName(%q) = %v", s, got)
		}
	}
}

func TestSplitSecretName(t *testing.T) {
	for name, want := range map[string][]string{
		"db": {"db"}, "prod/db": {"prod", "db"}, "a/b/c": {"a", "b", "c"},
		"a//b": nil, "/a": nil, "a/": nil, "a/../b": nil, "./a": nil,
	} {
		got, ok := splitSecretName(name)
		if ok != (want != nil) || !slices.Equal(got, want) {
			t.Errorf("splitSecretName(%q) = %v, %v", name, got, ok)
		}
	}
}

func TestJSONKeys(t *testing.T) {
	keys, ok := jsonKeys([]byte(` {"s":"str\"q","n":1.50,"b":true,"z":null,"o":{"a": 1},"a":[1, "x"],"..":"x","a/b":"x","":"x"}`))
	if !ok {
		t.Fatal("not recognised as an object")
	}
	want := map[string]string{"s": `str"q`, "n": "1.50", "b": "true", "z": "null", "o": `{"a":1}`, "a": `[1,"x"]`}
	if len(keys) != len(want) {
		t.Fatalf("keys %v", keys)
	}
	for k, v := range want {
		if string(keys[k]) != v {
			t.Errorf("key %q = %q, want %q", k, keys[k], v)
		}
	}
	for _, notObject := range []string{"plain", `["a"]`, `"s"`, `{"broken":`, ""} {
		if _, ok := jsonKeys([]byte(notObject)); ok {
			t.Errorf("%q taken for an object", notObject)
		}
	}
}

func TestMergeEntriesClashOrder(t *testing.T) {
	got := mergeEntries([]string{"AWSCURRENT", "x"}, []string{"x", "child"}, []string{"x", "child", "AWSCURRENT", "key", ".."})
	want := []dirEntry{{"AWSCURRENT", kindStage}, {"child", kindDir}, {"key", kindKey}, {"x", kindStage}}
	if !slices.Equal(got, want) {
		t.Fatalf("mergeEntries = %v, want %v", got, want)
	}
}
