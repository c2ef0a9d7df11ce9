package mapping

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIssue14_12_InlineMappingReachesNothingOfTheHost: a mapping given by a
// pod (ParseInline) may place files and render templates, but may not read
// a file of the host (template_file: refused before anything is read),
// run a hook (on_change) or give settings; each refusal names its line and
// field. files: and the CSI provider's objects: are read as from a file.
func TestIssue14_12_InlineMappingReachesNothingOfTheHost(t *testing.T) {
	host := filepath.Join(t.TempDir(), "host.tmpl")
	if err := os.WriteFile(host, []byte("HOST-FILE-CONTENT {{ secret \"app/db\" }}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ doc, want string }{
		"template_file": {"files:\n  - path: x\n    template_file: " + host + "\n", "mapping:3: files[0].template_file: is not allowed here: it would read a file of the host"},
		"file on_change": {"files:\n  - path: x\n    secret: app/db\n    on_change:\n      signal: HUP\n      pidfile: /run/x.pid\n",
			"mapping:4: files[0].on_change: is not allowed here: it would run on the host"},
		"top on_change": {"on_change:\n  command: id\nfiles:\n  - path: x\n    secret: app/db\n", "mapping:1: on_change: is not allowed here"},
		"setting":       {"refresh_interval: 1s\nfiles:\n  - path: x\n    secret: app/db\n", "mapping:1: refresh_interval: is not allowed here"},
	} {
		_, err := ParseInline("mapping", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "HOST-FILE-CONTENT") {
			t.Errorf("%s: the error shows the host file: %v", name, err)
		}
	}
	// Parse (a mapping file of the host's own) still reads them.
	if _, err := Parse(filepath.Join(filepath.Dir(host), "m.yaml"), []byte("files:\n  - path: x\n    template_file: host.tmpl\n")); err != nil {
		t.Fatalf("Parse with template_file: %v", err)
	}

	doc := "files:\n  - path: db/password\n    secret: app/db\n    key: password\n    mode: \"0400\"\n  - path: db.url\n    template: 'postgres://{{ key \"app/db\" \"user\" }}@db'\n" +
		"objects: |\n  - objectName: app/api\n    objectAlias: api\n"
	m, err := ParseInline("mapping", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.Paths(), " "); got != "api db.url db/password" {
		t.Fatalf("paths %q", got)
	}
}
