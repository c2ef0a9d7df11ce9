package cligen

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func testApp() *cli.App {
	return &cli.App{
		Name:  "secretsfs",
		Usage: "serve secrets",
		Commands: []*cli.Command{
			{Name: "mount", Usage: "mount them", Flags: []cli.Flag{&cli.StringFlag{Name: "region", Usage: "AWS region"}}},
			{Name: "gen", Hidden: true},
		},
	}
}

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		kind string
		want []string
	}{
		{"man", []string{".TH secretsfs 1", "serve secrets", "mount them", "--region"}},
		{"bash", []string{"complete -o bashdefault -o default -F _secretsfs secretsfs", "--generate-bash-completion"}},
		{"zsh", []string{"#compdef secretsfs\n", "_secretsfs \"$@\"", "--generate-bash-completion"}},
		{"fish", []string{"complete -c secretsfs", "mount"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(testApp(), tc.kind, &b); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("%s output lacks %q:\n%s", tc.kind, w, b.String())
				}
			}
			if tc.kind == "man" && strings.Contains(b.String(), ".SH gen") {
				t.Error("the hidden command is in the man page")
			}
		})
	}
}

func TestWriteRejectsUnknownKind(t *testing.T) {
	err := Write(testApp(), "tcsh", &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "bash, fish, man, zsh") {
		t.Fatalf("Write(tcsh) = %v, want an error listing the kinds", err)
	}
}

// "gen man DIR" writes every page, secretsfs.1 among them, as "gen man"
// writes it to stdout.
func TestWriteManPages(t *testing.T) {
	dir := t.TempDir()
	if err := WriteManPages(testApp(), dir); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := Write(testApp(), "man", &want); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "secretsfs.1"))
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("secretsfs.1: %v\n%s", err, got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(ManPages()) {
		t.Fatalf("%d files for %d pages", len(entries), len(ManPages()))
	}
}
