package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func runArgs(t *testing.T, act actions, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), act, append([]string{"secretsfs"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestVersionCommand(t *testing.T) {
	code, out, _ := runArgs(t, actions{}, "version")
	if code != 0 || !strings.HasPrefix(out, "secretsfs ") || len(strings.TrimSpace(out)) <= len("secretsfs") {
		t.Fatalf("version: code %d, output %q", code, out)
	}
}

func TestHelpListsCommands(t *testing.T) {
	code, out, _ := runArgs(t, actions{}, "--help")
	if code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	for _, want := range []string{"secretsfs", "version"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help output lacks %q:\n%s", want, out)
		}
	}
}

func TestUnknownFlagIsUsageError(t *testing.T) {
	code, _, errOut := runArgs(t, actions{}, "--no-such-flag")
	if code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if !strings.Contains(errOut, "no-such-flag") {
		t.Fatalf("stderr does not name the flag: %q", errOut)
	}
}

func TestBuildVersionUsesLinkerValue(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "9.8.7"
	if got := buildVersion(); got != "9.8.7" {
		t.Fatalf("buildVersion() = %q", got)
	}
}
