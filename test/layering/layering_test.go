// Package layering checks the import rules between the packages of the
// module with `go list`, so that a forbidden import fails `go test ./...`.
package layering

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/secretsfs/secretsfs"

// deps returns every package of the module with its transitive imports,
// tests left out (`go list -deps` semantics).
func deps(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", module+"/...").Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkgs[f[0]] = f[1:]
	}
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages:\n%s", len(pkgs), out)
	}
	return pkgs
}

// under reports whether pkg is dir or a package below it.
func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

// TestDefect11_06_ProductionCodeDoesNotImportTest: test/ holds the
// emulator and test helpers. Only main (which wires the demo and the
// emulator commands) and test/ itself may import it; the daemon (mount and
// below), cache, fs and packaging never do, not even indirectly.
func TestDefect11_06_ProductionCodeDoesNotImportTest(t *testing.T) {
	pkgs := deps(t)
	for _, must := range []string{module + "/mount", module + "/mount/mapping", module + "/cache", module + "/fs"} {
		if _, ok := pkgs[must]; !ok {
			t.Errorf("go list did not list %s", must)
		}
	}
	testDir := module + "/test"
	for pkg, imports := range pkgs {
		if pkg == module || under(pkg, testDir) {
			continue
		}
		for _, dep := range imports {
			if under(dep, testDir) {
				t.Errorf("%s imports %s (directly or through another package); only main and test/ may import test/", pkg, dep)
			}
		}
	}
}
