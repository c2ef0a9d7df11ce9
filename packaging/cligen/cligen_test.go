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
			{Name: "mount", Usage: "mount them", Flags: []cli.Flag{
				&cli.StringFlag{Name: "region", Usage: "AWS `REGION`", EnvVars: []string{"SECRETSFS_REGION"}},
				&cli.DurationFlag{Name: "max-stale", Usage: "bound", DefaultText: "no bound"},
				&cli.BoolFlag{Name: "allow-other", Usage: "let others in"},
				&cli.StringSliceFlag{Name: "secret", Usage: "a secret"},
			}},
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
		{"fstab-man", []string{".TH mount.fuse.secretsfs 8", "mount.fuse.secretsfs, mount.secretsfs",
			"\\fBregion\\fP=\\fIREGION\\fP", "AWS REGION; variable SECRETSFS_REGION", "\\fBmax_stale\\fP=\\fIDURATION\\fP", "bound (default: no bound)",
			"\\fBallow_other\\fP\n", "a secret; repeatable", "\\fBenv_file\\fP=\\fIPATH\\fP", "\\fBmount_timeout\\fP", "ENVIRONMENT FILE", "EXIT STATUS"}},
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
	if err == nil || !strings.Contains(err.Error(), "bash, fish, fstab-man, man, zsh") {
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

// The man page's ENVIRONMENT section lists every flag's variable, each once
// with every command whose flag reads it, sorted by name; hidden commands
// are left out.
func TestManEnvironmentComesFromTheFlags(t *testing.T) {
	app := &cli.App{
		Name: "secretsfs",
		Commands: []*cli.Command{
			{Name: "mount", Flags: []cli.Flag{
				&cli.StringFlag{Name: "region", EnvVars: []string{"SECRETSFS_REGION"}},
				&cli.BoolFlag{Name: "allow-other", EnvVars: []string{"SECRETSFS_ALLOW_OTHER"}},
			}},
			{Name: "check", Flags: []cli.Flag{&cli.StringFlag{Name: "region", EnvVars: []string{"SECRETSFS_REGION"}}}},
			{Name: "emulator", Flags: []cli.Flag{&cli.StringFlag{Name: "listen", EnvVars: []string{"SECRETSFS_EMULATOR_LISTEN"}}}},
			{Name: "gen", Hidden: true, Flags: []cli.Flag{&cli.StringFlag{Name: "x", EnvVars: []string{"SECRETSFS_HIDDEN"}}}},
		},
	}
	var b bytes.Buffer
	if err := Write(app, "man", &b); err != nil {
		t.Fatal(err)
	}
	_, env, _ := strings.Cut(b.String(), "\n.SH ENVIRONMENT\n")
	env, _, _ = strings.Cut(env, "\n.SH ")
	want := ".TP\n\\fBSECRETSFS_ALLOW_OTHER\\fR\n\\-\\-allow\\-other (mount)\n" +
		".TP\n\\fBSECRETSFS_EMULATOR_LISTEN\\fR\n\\-\\-listen (emulator)\n" +
		".TP\n\\fBSECRETSFS_REGION\\fR\n\\-\\-region (mount, check)\n.PP\n"
	if !strings.Contains(env, want) || strings.Contains(env, "SECRETSFS_HIDDEN") {
		t.Fatalf("ENVIRONMENT:\n%s\nwant the entries\n%s", env, want)
	}
}

func TestFstabManNeedsTheMountCommand(t *testing.T) {
	if err := Write(&cli.App{Name: "x"}, "fstab-man", &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "mount command") {
		t.Fatalf("Write = %v", err)
	}
}
