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
func deps(t *testing.T) map[string][]string { return list(t, "Deps") }

// imports returns every package of the module with its direct imports,
// tests left out.
func imports(t *testing.T) map[string][]string { return list(t, "Imports") }

// list runs `go list` over the module and returns each package with the
// import paths of its field (Deps or Imports).
func list(t *testing.T, field string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join ."+field+" \" \"}}", module+"/...").Output()
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

// TestPackagesImportOnlyWhatIsBelowThem: data flows one way, main -> mount
// -> (catalog, hooks, telemetry, mapping) -> (fs, cache). fs and cache
// import no other package of the module; mapping imports none either;
// catalog, hooks and telemetry import neither the daemon (mount) nor each
// other, so each can be read and tested on its own; and only cache talks
// to the AWS SDK: neither the features nor mount itself import it.
func TestPackagesImportOnlyWhatIsBelowThem(t *testing.T) {
	pkgs, direct := deps(t), imports(t)
	leaves := []string{module + "/fs", module + "/cache", module + "/mount/mapping"}
	features := []string{module + "/mount/catalog", module + "/mount/hooks", module + "/mount/telemetry"}
	for _, p := range append(leaves, features...) {
		if _, ok := pkgs[p]; !ok {
			t.Fatalf("go list did not list %s", p)
		}
	}
	for _, p := range leaves {
		for _, dep := range pkgs[p] {
			if under(dep, module) && !under(dep, p) {
				t.Errorf("%s imports %s; it may import no other package of the module", p, dep)
			}
		}
	}
	for _, p := range []string{module + "/mount", module + "/mount/csi"} {
		for _, dep := range direct[p] {
			if strings.HasPrefix(dep, "github.com/aws/") {
				t.Errorf("%s imports %s: the AWS SDK stays behind cache/ (build clients with cache.NewClient)", p, dep)
			}
		}
	}
	for _, p := range features {
		for _, dep := range pkgs[p] {
			if dep == module+"/mount" {
				t.Errorf("%s imports the daemon (mount), which is above it", p)
			}
			for _, other := range features {
				if other != p && under(dep, other) {
					t.Errorf("%s imports %s: features talk through interfaces, not each other", p, other)
				}
			}
		}
		for _, dep := range direct[p] {
			if strings.HasPrefix(dep, "github.com/aws/") {
				t.Errorf("%s imports %s: the AWS SDK stays behind cache/", p, dep)
			}
		}
	}
}
