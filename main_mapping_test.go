package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/mount"
)

func writeMapping(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secretsfs.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const settingsYAML = `refresh_interval: 2m
prefix: [a/, b/]
kernel_cache: true
file_mode: "0440"
files:
  - path: x
    secret: prod/db
`

func TestMappingFileSettingsReachConfig(t *testing.T) {
	p := writeMapping(t, settingsYAML)
	var s mountStub
	if code, _, errOut := runArgs(t, s.actions(), "mount", "--config", p, "/mnt/s"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	c := s.cfg
	if c.RefreshInterval != 2*time.Minute || !slices.Equal(c.Prefixes, []string{"a/", "b/"}) || !c.KernelCache || c.FileMode != 0o440 {
		t.Fatalf("config %+v", c)
	}
	if c.Mapping == nil || len(c.Mapping.Files) != 1 || c.Mapping.Files[0].Path != "x" || c.ExposeAll {
		t.Fatalf("mapping %+v expose-all %v", c.Mapping, c.ExposeAll)
	}
}

func TestFlagsAndVariablesWinOverTheFile(t *testing.T) {
	p := writeMapping(t, settingsYAML)
	t.Setenv("SECRETSFS_FILE_MODE", "0400")
	var s mountStub
	if code, _, errOut := runArgs(t, s.actions(), "mount", "--config", p, "--refresh-interval", "3m", "--prefix", "c/", "--expose-all", "/mnt/s"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	c := s.cfg
	if c.RefreshInterval != 3*time.Minute || !slices.Equal(c.Prefixes, []string{"c/"}) || c.FileMode != 0o400 || !c.KernelCache || !c.ExposeAll {
		t.Fatalf("config %+v", c)
	}
}

func TestMappingFileFromTheEnvironment(t *testing.T) {
	t.Setenv("SECRETSFS_CONFIG", writeMapping(t, settingsYAML))
	var s mountStub
	if code, _, errOut := runArgs(t, s.actions(), "mount", "/mnt/s"); code != 0 || s.cfg.Mapping == nil {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestMappingFileProblemsAreUsageErrors(t *testing.T) {
	for text, want := range map[string]string{
		"files:\n  - path: ../x\n    secret: a\n": `secretsfs.yaml:2: files[0].path: "../x" leaves the mount`,
		"config: other.yaml\n":                    `secretsfs.yaml:1: config: unknown setting`,
		"refresh_interval: [1s, 2s]\n":            `secretsfs.yaml:1: refresh_interval: takes one value, got 2`,
		"max_cache_size: many\n":                  `secretsfs.yaml:1: max_cache_size: "many" is not a valid value`,
	} {
		var s mountStub
		code, _, errOut := runArgs(t, s.actions(), "mount", "--config", writeMapping(t, text), "/mnt/s")
		if code != 2 || !strings.Contains(errOut, want) || s.calls != 0 {
			t.Errorf("%q: exit %d, calls %d, stderr:\n%s\nwant %q", text, code, s.calls, errOut, want)
		}
	}
	var s mountStub
	if code, _, errOut := runArgs(t, s.actions(), "mount", "--expose-all", "/mnt/s"); code != 2 || !strings.Contains(errOut, "--expose-all") {
		t.Fatalf("--expose-all alone: exit %d: %s", code, errOut)
	}
}

func TestCheckCommand(t *testing.T) {
	var got *mount.Config
	act := actions{check: func(_ context.Context, cfg mount.Config, _ io.Writer) error {
		got = &cfg
		return nil
	}}
	p := writeMapping(t, settingsYAML)
	if code, _, errOut := runArgs(t, act, "check", "--config", p, "--endpoint-url", "http://127.0.0.1:1"); code != 0 || got == nil {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got.Mapping == nil || got.EndpointURL != "http://127.0.0.1:1" || got.RefreshInterval != 2*time.Minute {
		t.Fatalf("config %+v", got)
	}
	// A problem in the file is a finding (1); a bad command line is 2.
	if code, _, errOut := runArgs(t, act, "check", "--config", writeMapping(t, "files:\n  - path: a\n")); code != 1 || !strings.Contains(errOut, "secretsfs.yaml:2: files[0]: secret is missing") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{{"check"}, {"check", "--config", p, "extra"}, {"check", "--bogus"}} {
		if code, _, _ := runArgs(t, act, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
