package mapping

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// malformedYAML is a mapping file of about size bytes in entries of one
// long line each, broken as bad says: "indent" mis-indents the last line,
// "quote" leaves a quote open on line 2.
func malformedYAML(size int, bad string) []byte {
	var b bytes.Buffer
	b.WriteString("files:\n")
	for i := 0; b.Len() < size-2000; i++ {
		if i == 0 && bad == "quote" {
			b.WriteString("  - path: \"f\n")
			continue
		}
		fmt.Fprintf(&b, "  - {path: f%d, secret: s, template: '%s'}\n", i, strings.Repeat("x", 900))
	}
	if bad == "indent" {
		b.WriteString("  - path: last\n   secret: s\n")
	}
	return b.Bytes()
}

// fastest returns the shortest of n runs of f.
func fastest(n int, f func()) time.Duration {
	best := time.Duration(1<<63 - 1)
	for range n {
		start := time.Now()
		f()
		best = min(best, time.Since(start))
	}
	return best
}

// TestDefect9_14_MalformedFileIsLocatedInLinearTime: finding the line of a
// YAML error near the end of a file close to the size limit costs about as
// much more than in a file 16 times smaller as the file is larger, not the
// square of that; and the line is right.
func TestDefect9_14_MalformedFileIsLocatedInLinearTime(t *testing.T) {
	big := malformedYAML(MaxFileSize-100, "indent")
	small := malformedYAML(len(big)/16, "indent")
	var err error
	parse := func(data []byte) func() {
		return func() { _, err = Parse("m.yaml", data) }
	}
	located := func(data []byte) {
		t.Helper()
		want := fmt.Sprintf("m.yaml:%d: malformed YAML: did not find expected '-' indicator", bytes.Count(data, []byte("\n")))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%d bytes: err = %v, want %s", len(data), err, want)
		}
	}
	tSmall := fastest(5, parse(small))
	located(small)
	tBig := fastest(2, parse(big))
	located(big)
	sizes := float64(len(big)) / float64(len(small))
	ratio := float64(tBig) / float64(tSmall)
	t.Logf("%d bytes in %v, %d bytes in %v: %.0f times the time for %.0f times the size", len(small), tSmall, len(big), tBig, ratio, sizes)
	if ratio > 5*sizes {
		t.Fatalf("a file %.0f times larger took %.0f times as long to refuse; want at most %.0f (linear)", sizes, ratio, 5*sizes)
	}
}

// TestMalformedYAMLIsLocatedInTwoParses counts the work: a YAML error near
// the limit, shown where the parser stops (a bad indent) or further down (a
// quote left open), is located with at most two parses of the file, and
// at the right line.
func TestMalformedYAMLIsLocatedInTwoParses(t *testing.T) {
	for _, c := range []struct{ bad, want string }{
		{"indent", ""},
		{"quote", "m.yaml:2: malformed YAML: found unexpected end of stream"},
	} {
		data := malformedYAML(MaxFileSize-100, c.bad)
		if c.want == "" {
			c.want = fmt.Sprintf("m.yaml:%d: malformed YAML: did not find expected '-' indicator", bytes.Count(data, []byte("\n")))
		}
		p := &parser{source: "m.yaml"}
		var doc yaml.Node
		_, err := p.decodeYAML(data, 0, &doc)
		if err == nil || err.Error() != c.want {
			t.Fatalf("%s: err = %v, want %s", c.bad, err, c.want)
		}
		if p.yamlRead > 2*len(data)+4096 {
			t.Fatalf("%s: %d bytes parsed to locate the error in %d", c.bad, p.yamlRead, len(data))
		}
	}
}

// TestDefect9_14_FilesOverTheLimitAreRefused: a mapping file or a template
// file over MaxFileSize is refused with a message naming the limit, without
// being parsed.
func TestDefect9_14_FilesOverTheLimitAreRefused(t *testing.T) {
	dir := t.TempDir()
	huge := append([]byte("files:\n  - path: a\n    secret: b\n#"), bytes.Repeat([]byte("x"), MaxFileSize)...)
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, huge, 0o600); err != nil {
		t.Fatal(err)
	}
	want := "is larger than 1 MiB (1048576 bytes), the limit for a mapping or template file"
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), big+": ") || !strings.Contains(err.Error(), want) {
		t.Fatalf("Load of a %d-byte file: err = %v, want %q", len(huge), err, want)
	}
	if _, err := Parse("m.yaml", huge); err == nil || !strings.Contains(err.Error(), "m.yaml: ") || !strings.Contains(err.Error(), want) {
		t.Fatalf("Parse of %d bytes: err = %v, want %q", len(huge), err, want)
	}
	tmpl := filepath.Join(dir, "big.tmpl")
	if err := os.WriteFile(tmpl, huge, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(cfg, []byte("files:\n  - path: a\n    template_file: big.tmpl\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cfg); err == nil || !strings.Contains(err.Error(), "m.yaml:3: files[0].template_file: ") || !strings.Contains(err.Error(), want) {
		t.Fatalf("a template file of %d bytes: err = %v, want %q", len(huge), err, want)
	}
	// At the limit is fine.
	ok := append([]byte("files:\n  - path: a\n    secret: b\n#"), bytes.Repeat([]byte("x"), MaxFileSize-len("files:\n  - path: a\n    secret: b\n#"))...)
	if err := os.WriteFile(big, ok, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err != nil {
		t.Fatalf("a file of exactly %d bytes: %v", len(ok), err)
	}
}
