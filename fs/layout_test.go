package fs

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
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

// TestDirOf: the directory a secret's name gives is the name itself, and
// only for names whose every segment is a valid file name; no name is
// cleaned into another one's path.
func TestDirOf(t *testing.T) {
	long := strings.Repeat("x", 256)
	for _, c := range []struct {
		name, dir string
		ok        bool
	}{
		{"a", "a", true},
		{"a/b", "a/b", true},
		{"prod/db.v2", "prod/db.v2", true},
		{"/a", "", false},
		{"a/", "", false},
		{"a//b", "", false},
		{"a/./b", "", false},
		{"a/../b", "", false},
		{"..", "", false},
		{".", "", false},
		{"", "", false},
		{"a\x00b", "", false},
		{long, "", false},
		{"a/" + long, "", false},
		{strings.Repeat("x", 255), strings.Repeat("x", 255), true},
	} {
		dir, ok := DirOf(c.name)
		if dir != c.dir || ok != c.ok {
			t.Errorf("DirOf(%q) = %q, %v; want %q, %v", c.name, dir, ok, c.dir, c.ok)
		}
		if ix := newIndex(); ix.add(SecretRef{Name: c.name, ID: "x"}) != c.ok {
			t.Errorf("the index adds %q: %v, DirOf ok %v", c.name, !c.ok, c.ok)
		}
	}
}

// TestChangedFiles: the files of a secret's directory whose bytes a
// stage's move changes.
func TestChangedFiles(t *testing.T) {
	known := func(s string) Snapshot { return Snapshot{Exists: true, Known: true, Data: []byte(s)} }
	none := Snapshot{Known: true}
	unknown := Snapshot{Exists: true}
	v1 := `{"user":"app","password":"p1","gone":"x"}`
	v2 := `{"user":"app","password":"p2","new":1}`
	for _, c := range []struct {
		what     string
		stage    string
		old, new Snapshot
		want     []string
	}{
		{"the default stage moves: its file and each key that changed", "AWSCURRENT", known(v1), known(v2),
			[]string{"AWSCURRENT", "gone", "new", "password"}},
		{"another stage appears: only its own file", "AWSPREVIOUS", none, known(v1), []string{"AWSPREVIOUS"}},
		{"a new version with the same bytes changes nothing", "AWSCURRENT", known(v2), known(v2), nil},
		{"the old value is not at hand: every file of the new", "AWSCURRENT", unknown, known(v2),
			[]string{"AWSCURRENT", "new", "password", "user"}},
		{"the default stage appears", "AWSCURRENT", none, known(v1), []string{"AWSCURRENT", "gone", "password", "user"}},
		{"the default stage is removed: its file and every key", "AWSCURRENT", known(v1), none,
			[]string{"AWSCURRENT", "gone", "password", "user"}},
		{"another stage removed", "AWSPENDING", known(v1), none, []string{"AWSPENDING"}},
		{"not JSON any more: the keys go", "AWSCURRENT", known(`{"k":"v"}`), known("plain"), []string{"AWSCURRENT", "k"}},
		{"a key named like the stage is hidden by the stage's file", "AWSCURRENT", known(`{"AWSCURRENT":"1"}`), known(`{"AWSCURRENT":"2"}`),
			[]string{"AWSCURRENT"}},
		{"a stage that cannot be a file name", "a/b", known("1"), known("2"), nil},
		{"keys that cannot be file names", "AWSCURRENT", known(`{"..":"1","a/b":"1"}`), known(`{"..":"2","a/b":"2"}`),
			[]string{"AWSCURRENT"}},
	} {
		if got := ChangedFiles(c.stage, "AWSCURRENT", c.old, c.new); !slices.Equal(got, c.want) {
			t.Errorf("%s: ChangedFiles = %q, want %q", c.what, got, c.want)
		}
	}
	// The keys follow the configured default stage, not AWSCURRENT.
	if got, want := ChangedFiles("LIVE", "LIVE", known(v1), known(v2)), []string{"LIVE", "gone", "new", "password"}; !slices.Equal(got, want) {
		t.Errorf("default stage LIVE: ChangedFiles = %q, want %q", got, want)
	}
	if got, want := ChangedFiles("AWSCURRENT", "LIVE", known(v1), known(v2)), []string{"AWSCURRENT"}; !slices.Equal(got, want) {
		t.Errorf("AWSCURRENT beside default stage LIVE: ChangedFiles = %q, want %q", got, want)
	}
}

// TestIssue12_C_KeyFileParsedOncePerVersion: a LOOKUP of a key file does not
// parse the whole JSON value again while its version stays: it costs the
// same with 200 keys in the value as with 2. A new version is parsed anew.
func TestIssue12_C_KeyFileParsedOncePerVersion(t *testing.T) {
	s := newFakeStore()
	big := `{"k0":"v0"`
	for i := 1; i < 200; i++ {
		big += fmt.Sprintf(`,"k%d":"a value of key %d"`, i, i)
	}
	s.put("small", `{"k0":"v0","k1":"v1"}`)
	s.put("big", big+"}")
	_, raw := rawTree(t, Options{Store: s, Catalog: &fakeCatalog{refs: refs("small", "big")}})
	sizeOf := func(dir uint64) uint64 {
		var out fuse.EntryOut
		if st := raw.Lookup(nil, &fuse.InHeader{NodeId: dir}, "k0", &out); st != fuse.OK {
			t.Fatalf("lookup k0: %v", st)
		}
		return out.Attr.Size
	}
	smallDir, bigDir := lookup(t, raw, 1, "small"), lookup(t, raw, 1, "big")
	allocs := func(dir uint64) float64 { return testing.AllocsPerRun(50, func() { sizeOf(dir) }) }
	a, b := allocs(smallDir), allocs(bigDir)
	if b > a+2 {
		t.Fatalf("a lookup of a key file allocates %.0f times in a value of 200 keys, %.0f in one of 2", b, a)
	}
	s.put("big", `{"k0":"a new value"}`)
	if got := sizeOf(bigDir); got != uint64(len("a new value")) {
		t.Fatalf("after a new version, k0 has size %d, want %d", got, len("a new value"))
	}
}
