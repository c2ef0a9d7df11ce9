package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/secretsfs/secretsfs/test/emulator"
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

// emulatorStub records the configuration the emulator command was given.
type emulatorStub struct {
	calls int
	cfg   emulator.CommandConfig
	err   error
}

func (s *emulatorStub) actions() actions {
	return actions{emulator: func(_ context.Context, cfg emulator.CommandConfig, _, _ io.Writer) error {
		s.calls++
		s.cfg = cfg
		return s.err
	}}
}

func TestEmulatorFlags(t *testing.T) {
	seed := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(seed, []byte(`{"Secrets":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want emulator.CommandConfig
	}{
		{"defaults", nil, nil, emulator.CommandConfig{Listen: "127.0.0.1:9765"}},
		{"flags", nil, []string{"--listen", "127.0.0.1:0", "--seed", seed}, emulator.CommandConfig{Listen: "127.0.0.1:0", SeedFile: seed}},
		{"environment", map[string]string{"SECRETSFS_EMULATOR_LISTEN": "[::1]:4000", "SECRETSFS_EMULATOR_SEED": seed}, nil, emulator.CommandConfig{Listen: "[::1]:4000", SeedFile: seed}},
		{"flags beat environment", map[string]string{"SECRETSFS_EMULATOR_LISTEN": "127.0.0.1:1"}, []string{"--listen=127.0.0.1:2"}, emulator.CommandConfig{Listen: "127.0.0.1:2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SECRETSFS_EMULATOR_LISTEN", "")
			t.Setenv("SECRETSFS_EMULATOR_SEED", "")
			os.Unsetenv("SECRETSFS_EMULATOR_LISTEN")
			os.Unsetenv("SECRETSFS_EMULATOR_SEED")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var stub emulatorStub
			code, _, errOut := runArgs(t, stub.actions(), append([]string{"emulator"}, tc.args...)...)
			if code != 0 || stub.calls != 1 || stub.cfg != tc.want {
				t.Fatalf("exit %d, %d calls, config %+v; want %+v (stderr %q)", code, stub.calls, stub.cfg, tc.want, errOut)
			}
		})
	}
}

func TestEmulatorBadFlags(t *testing.T) {
	cases := []struct {
		args    []string
		mention []string
	}{
		{[]string{"--listen", "nonsense"}, []string{"--listen", "nonsense"}},
		{[]string{"--seed", "/no/such/seed.json"}, []string{"--seed", "/no/such/seed.json", "no such file"}},
		{[]string{"--bogus"}, []string{"bogus"}},
		{[]string{"extra-arg"}, []string{"no arguments", "extra-arg"}},
	}
	for _, tc := range cases {
		var stub emulatorStub
		code, _, errOut := runArgs(t, stub.actions(), append([]string{"emulator"}, tc.args...)...)
		if code != 2 || stub.calls != 0 {
			t.Errorf("%v: exit %d, %d calls; want exit 2 and no call", tc.args, code, stub.calls)
		}
		for _, m := range tc.mention {
			if !strings.Contains(errOut, m) {
				t.Errorf("%v: stderr %q does not mention %q", tc.args, errOut, m)
			}
		}
	}
	stub := emulatorStub{err: errors.New("seed file x.json: line 3: invalid JSON")}
	code, _, errOut := runArgs(t, stub.actions(), "emulator")
	if code != 1 || !strings.Contains(errOut, "x.json: line 3") {
		t.Fatalf("action error: exit %d, stderr %q", code, errOut)
	}
}

// TestEmulatorCommandServes runs the real command: it prints a URL, serves
// the SDK there, and returns 0 when its context ends.
func TestEmulatorCommandServes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, defaultActions(), []string{"secretsfs", "emulator", "--listen", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
		done <- code
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the URL: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	url := strings.TrimSpace(line)
	client := secretsmanager.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "example", ""),
	}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(url) })
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	if _, err := client.CreateSecret(cctx, &secretsmanager.CreateSecretInput{Name: aws.String("hello"), SecretString: aws.String("world")}); err != nil {
		t.Fatalf("CreateSecret at %s: %v", url, err)
	}
	out, err := client.GetSecretValue(cctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("hello")})
	if err != nil || aws.ToString(out.SecretString) != "world" {
		t.Fatalf("GetSecretValue: %v", err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d after cancel", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the emulator command did not return after cancel")
	}
}
