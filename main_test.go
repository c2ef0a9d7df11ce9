package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/urfave/cli/v2"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/mount"
	"github.com/secretsfs/secretsfs/mount/csi"
	"github.com/secretsfs/secretsfs/packaging/fstab"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
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

// mountStub records the configuration the mount and demo commands hand on.
type mountStub struct {
	calls int
	cfg   mount.Config
	demo  demoConfig
}

func (s *mountStub) actions() actions {
	return actions{
		mount: func(_ context.Context, cfg mount.Config, _ mount.Env) error {
			s.calls++
			s.cfg = cfg
			return nil
		},
		demo: func(_ context.Context, cfg demoConfig, _, _ io.Writer) error {
			s.calls++
			s.demo = cfg
			return nil
		},
	}
}

// wantFull is the configuration every flag (or variable) below sets.
func wantFull() mount.Config {
	c := mount.DefaultConfig()
	c.MountPoint = "/mnt/s"
	c.RefreshInterval = 90 * time.Second
	c.MaxCacheSize = 50
	c.RetryDelayBase = 2 * time.Second
	c.RetryGrowthFactor = 1.5
	c.RetryDelayMax = 3 * time.Minute
	c.DefaultStage = "BLUE"
	c.Region = "eu-west-1"
	c.Profile = "ops"
	c.EndpointURL = "http://127.0.0.1:4566"
	c.RoleARN = "arn:aws:iam::123456789012:role/secretsfs"
	c.UID, c.GID = 1000, 1001
	c.FileMode, c.DirMode = 0o440, 0o550
	c.AllowOther, c.KernelCache = true, true
	c.Prefixes = []string{"prod/", "shared/"}
	c.Tags = []mount.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: ""}}
	c.ListInterval = 30 * time.Second
	c.LogLevel, c.LogFormat = "debug", "json"
	c.LogFile = "/var/log/secretsfs.log"
	c.FsName = "app-secrets"
	c.Version = buildVersion()
	return c
}

func TestMountFlagsReachConfig(t *testing.T) {
	var s mountStub
	code, _, errOut := runArgs(t, s.actions(), "mount",
		"--refresh-interval", "90s", "--max-cache-size", "50", "--retry-delay-base", "2s",
		"--retry-growth-factor", "1.5", "--retry-delay-max", "3m", "--default-stage", "BLUE",
		"--region", "eu-west-1", "--profile", "ops", "--endpoint-url", "http://127.0.0.1:4566",
		"--role-arn", "arn:aws:iam::123456789012:role/secretsfs", "--uid", "1000", "--gid", "1001",
		"--file-mode", "0440", "--dir-mode", "550", "--allow-other", "--kernel-cache",
		"--prefix", "prod/", "--prefix", "shared/", "--tag", "env=prod", "--tag", "team=",
		"--list-interval", "30s", "--log-level", "debug", "--log-format", "json",
		"--log-file", "/var/log/secretsfs.log", "--fsname", "app-secrets", "/mnt/s")
	if code != 0 || s.calls != 1 {
		t.Fatalf("exit %d, %d calls; stderr %s", code, s.calls, errOut)
	}
	if want := wantFull(); !reflect.DeepEqual(s.cfg, want) {
		t.Fatalf("config\n got %+v\nwant %+v", s.cfg, want)
	}
}

func TestMountEnvVarsReachConfig(t *testing.T) {
	for k, v := range map[string]string{
		"SECRETSFS_REFRESH_INTERVAL":    "90s",
		"SECRETSFS_MAX_CACHE_SIZE":      "50",
		"SECRETSFS_RETRY_DELAY_BASE":    "2s",
		"SECRETSFS_RETRY_GROWTH_FACTOR": "1.5",
		"SECRETSFS_RETRY_DELAY_MAX":     "3m",
		"SECRETSFS_DEFAULT_STAGE":       "BLUE",
		"SECRETSFS_REGION":              "eu-west-1",
		"SECRETSFS_PROFILE":             "ops",
		"SECRETSFS_ENDPOINT_URL":        "http://127.0.0.1:4566",
		"SECRETSFS_ROLE_ARN":            "arn:aws:iam::123456789012:role/secretsfs",
		"SECRETSFS_UID":                 "1000",
		"SECRETSFS_GID":                 "1001",
		"SECRETSFS_FILE_MODE":           "0440",
		"SECRETSFS_DIR_MODE":            "550",
		"SECRETSFS_ALLOW_OTHER":         "true",
		"SECRETSFS_KERNEL_CACHE":        "true",
		"SECRETSFS_PREFIX":              "prod/,shared/",
		"SECRETSFS_TAG":                 "env=prod,team=",
		"SECRETSFS_LIST_INTERVAL":       "30s",
		"SECRETSFS_LOG_LEVEL":           "debug",
		"SECRETSFS_LOG_FORMAT":          "json",
		"SECRETSFS_LOG_FILE":            "/var/log/secretsfs.log",
		"SECRETSFS_FSNAME":              "app-secrets",
	} {
		t.Setenv(k, v)
	}
	var s mountStub
	code, _, errOut := runArgs(t, s.actions(), "mount", "/mnt/s")
	if code != 0 || s.calls != 1 {
		t.Fatalf("exit %d, %d calls; stderr %s", code, s.calls, errOut)
	}
	if want := wantFull(); !reflect.DeepEqual(s.cfg, want) {
		t.Fatalf("config\n got %+v\nwant %+v", s.cfg, want)
	}
}

func TestMountSecretFlagAndEnv(t *testing.T) {
	var s mountStub
	if code, _, errOut := runArgs(t, s.actions(), "mount", "--secret", "a", "--secret", "arn:aws:secretsmanager:us-east-1:123456789012:secret:b-AbCdEf", "/m"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := []string{"a", "arn:aws:secretsmanager:us-east-1:123456789012:secret:b-AbCdEf"}; !reflect.DeepEqual(s.cfg.Secrets, want) {
		t.Fatalf("Secrets = %v", s.cfg.Secrets)
	}
	t.Setenv("SECRETSFS_SECRET", "x,y")
	if code, _, errOut := runArgs(t, s.actions(), "mount", "/m"); code != 0 || !reflect.DeepEqual(s.cfg.Secrets, []string{"x", "y"}) {
		t.Fatalf("exit %d, Secrets %v: %s", code, s.cfg.Secrets, errOut)
	}
}

func TestMountDefaults(t *testing.T) {
	var s mountStub
	if code, _, errOut := runArgs(t, s.actions(), "mount", "/m"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := mount.DefaultConfig()
	want.MountPoint, want.Version = "/m", buildVersion()
	if !reflect.DeepEqual(s.cfg, want) {
		t.Fatalf("config\n got %+v\nwant %+v", s.cfg, want)
	}
}

func TestMountBadValues(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		flag string
	}{
		{args: nil, flag: "MOUNTPOINT"},
		{args: []string{"/a", "/b"}, flag: "MOUNTPOINT"},
		{args: []string{"--refresh-interval", "soon", "/m"}, flag: "refresh-interval"},
		{args: []string{"--refresh-interval", "0s", "/m"}, flag: "--refresh-interval"},
		{args: []string{"--max-cache-size", "0", "/m"}, flag: "--max-cache-size"},
		{args: []string{"--retry-growth-factor", "0.5", "/m"}, flag: "--retry-growth-factor"},
		{args: []string{"--retry-delay-max", "1ms", "/m"}, flag: "--retry-delay-max"},
		{args: []string{"--default-stage", "", "/m"}, flag: "--default-stage"},
		{args: []string{"--endpoint-url", "localhost:4566", "/m"}, flag: "--endpoint-url"},
		{args: []string{"--role-arn", "admin", "/m"}, flag: "--role-arn"},
		{args: []string{"--uid", "-1", "/m"}, flag: "uid"},
		{args: []string{"--file-mode", "0800", "/m"}, flag: "--file-mode"},
		{args: []string{"--file-mode", "rw", "/m"}, flag: "--file-mode"},
		{args: []string{"--dir-mode", "4755", "/m"}, flag: "--dir-mode"},
		{args: []string{"--tag", "env", "/m"}, flag: "--tag"},
		{args: []string{"--prefix", "a:b", "/m"}, flag: "--prefix"},
		{args: []string{"--secret", "a", "--prefix", "b", "/m"}, flag: "--secret"},
		{args: []string{"--list-interval", "-5m", "/m"}, flag: "--list-interval"},
		{args: []string{"--log-level", "loud", "/m"}, flag: "--log-level"},
		{args: []string{"--log-format", "xml", "/m"}, flag: "--log-format"},
		{args: []string{"--log-file", "/var/log/s.log", "--syslog", "/m"}, flag: "--log-file"},
		{args: []string{"--fsname", "a b", "/m"}, flag: "--fsname"},
		{args: []string{"--fsname", "a,b", "/m"}, flag: "--fsname"},
		{args: []string{"--fsname", "", "/m"}, flag: "--fsname"},
		{env: map[string]string{"SECRETSFS_REFRESH_INTERVAL": "soon"}, args: []string{"/m"}, flag: "refresh-interval"},
		{env: map[string]string{"SECRETSFS_ALLOW_OTHER": "maybe"}, args: []string{"/m"}, flag: "allow-other"},
		{env: map[string]string{"SECRETSFS_FILE_MODE": "999"}, args: []string{"/m"}, flag: "--file-mode"},
		{env: map[string]string{"SECRETSFS_TAG": "novalue"}, args: []string{"/m"}, flag: "--tag"},
	} {
		t.Run(strings.Join(tc.args, " ")+tc.flag, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var s mountStub
			code, _, errOut := runArgs(t, s.actions(), append([]string{"mount"}, tc.args...)...)
			if code != 2 || s.calls != 0 {
				t.Fatalf("exit %d with %d calls, want 2 and none; stderr %s", code, s.calls, errOut)
			}
			if !strings.Contains(errOut, tc.flag) {
				t.Fatalf("stderr does not name %s: %s", tc.flag, errOut)
			}
		})
	}
}

// TestDefect9_15_IntervalFlagsHaveLowerBounds: 1ns intervals are refused
// with exit 2 and a message naming the flag and its bound, also in the demo.
func TestDefect9_15_IntervalFlagsHaveLowerBounds(t *testing.T) {
	for _, args := range [][]string{
		{"mount", "--refresh-interval", "1ns", "/m"},
		{"mount", "--list-interval", "1ns", "/m"},
		{"mount", "--retry-delay-base", "1ns", "--retry-delay-max", "1ns", "/m"},
		{"mount", "--retry-delay-max", "1ns", "--retry-delay-base", "1ns", "/m"},
		{"demo", "--refresh-interval", "1ns"},
		{"demo", "--rotate-interval", "1ns"},
	} {
		var s mountStub
		code, _, errOut := runArgs(t, s.actions(), args...)
		if code != 2 || s.calls != 0 || !strings.Contains(errOut, args[1]) || !strings.Contains(errOut, "at least") {
			t.Errorf("%v: exit %d with %d calls, stderr %q; want 2 naming %s and its bound", args, code, s.calls, errOut, args[1])
		}
	}
	var s mountStub
	if code, _, errOut := runArgs(t, s.actions(), "demo", "--refresh-interval", "1s"); code != 0 || s.calls != 1 {
		t.Errorf("demo --refresh-interval 1s: exit %d: %s", code, errOut)
	}
}

func TestDemoCommand(t *testing.T) {
	var s mountStub
	if code, _, errOut := runArgs(t, s.actions(), "demo"); code != 0 || s.calls != 1 || s.demo.MountPoint != "" || s.demo.RotateEvery != 20*time.Second || s.demo.RefreshInterval != 5*time.Second {
		t.Fatalf("demo: exit %d, %+v: %s", code, s.demo, errOut)
	}
	if code, _, _ := runArgs(t, s.actions(), "demo", "--kernel-cache", "--rotate-interval", "3s", "/tmp/x"); code != 0 || s.demo.MountPoint != "/tmp/x" || !s.demo.KernelCache || s.demo.RotateEvery != 3*time.Second {
		t.Fatalf("demo /tmp/x: exit %d, %+v", code, s.demo)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"/a", "/b"}, "MOUNTPOINT: give at most one directory"},
		{[]string{"--rotate-interval", "0s"}, "--rotate-interval: is 0s; give at least 1s"},
		{[]string{"--log-level", "loud"}, `--log-level: is "loud"; give debug, info, warn or error`},
	} {
		calls := s.calls
		code, _, errOut := runArgs(t, s.actions(), append([]string{"demo"}, tc.args...)...)
		if code != 2 || s.calls != calls || !strings.Contains(errOut, tc.want) {
			t.Errorf("demo %v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestDemoRotatesOnTheInjectedClock runs the demo with a stand-in daemon:
// the daemon gets the emulator's endpoint and a static key that the
// emulator accepts, the tips follow the serving call, and demo/db rotates
// each time the clock reaches the rotation interval, not before.
func TestDemoRotatesOnTheInjectedClock(t *testing.T) {
	const every = 7 * time.Second
	clock := cachetest.NewClock(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	var stdout testutil.SyncBuffer
	type served struct {
		cfg mount.Config
		sm  *secretsmanager.Client
	}
	got := make(chan served, 1)
	daemon := func(ctx context.Context, cfg mount.Config, env mount.Env) error {
		if env.Stdout != &stdout || env.StaticKeyID == "" || env.StaticSecretKey == "" {
			return fmt.Errorf("env = %+v; want stdout and a static key", env)
		}
		// Serving first, as the real daemon does: the tips are written by
		// then.
		env.OnServing()
		got <- served{cfg, secretsmanager.NewFromConfig(aws.Config{
			Region:      cfg.Region,
			Credentials: credentials.NewStaticCredentialsProvider(env.StaticKeyID, env.StaticSecretKey, ""),
		}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(cfg.EndpointURL) })}
		<-ctx.Done()
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- demoRunner{daemon: daemon, clock: clock}.run(ctx, demoConfig{RotateEvery: every, RefreshInterval: 2 * time.Second}, &stdout, io.Discard)
	}()
	var s served
	select {
	case s = <-got:
	case err := <-done:
		t.Fatalf("the demo ended before serving: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
		if _, err := os.Stat(s.cfg.MountPoint); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the temporary mount point %s is left behind: %v", s.cfg.MountPoint, err)
		}
	})
	if s.cfg.RefreshInterval != 2*time.Second || s.cfg.ListInterval != mount.MinListInterval || !strings.HasPrefix(s.cfg.EndpointURL, "http://127.0.0.1:") {
		t.Errorf("daemon config: refresh %v, list %v, endpoint %q", s.cfg.RefreshInterval, s.cfg.ListInterval, s.cfg.EndpointURL)
	}
	password := func() string {
		t.Helper()
		out, err := s.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(emulator.DemoSecret)})
		if err != nil {
			t.Fatalf("GetSecretValue with the demo's key: %v", err)
		}
		return aws.ToString(out.SecretString)
	}
	first := password()
	if !strings.Contains(first, "correct-horse-battery-staple") {
		t.Fatalf("demo/db = %q, want the sample", first)
	}
	if !strings.Contains(stdout.String(), "cat "+filepath.Join(s.cfg.MountPoint, "demo/db/password")) {
		t.Errorf("the tips do not name the mount point %s:\n%s", s.cfg.MountPoint, stdout.String())
	}

	waiting := func() {
		testutil.Eventually(t, 10*time.Second, "the rotation to wait on the clock", func() bool { return clock.Waiters() == 1 })
	}
	waiting()
	clock.Advance(every - time.Nanosecond)
	if clock.Waiters() != 1 || strings.Contains(stdout.String(), "demo: rotated") || password() != first {
		t.Fatalf("rotated before the interval:\n%s", stdout.String())
	}
	seen := first
	for n := 1; n <= 2; n++ {
		clock.Advance(time.Nanosecond)
		testutil.Eventually(t, 10*time.Second, "rotation report", func() bool {
			return strings.Count(stdout.String(), "demo: rotated demo/db to version ") == n
		})
		if now := password(); now == seen {
			t.Fatalf("rotation %d did not change demo/db", n)
		} else {
			seen = now
		}
		waiting()
		clock.Advance(every - time.Nanosecond)
	}
}

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
	// A problem of the file itself is 2, as for mount and a bad command
	// line; a file that would fail is 1 (mount.Check's error).
	if code, _, errOut := runArgs(t, act, "check", "--config", writeMapping(t, "files:\n  - path: a\n")); code != 2 || !strings.Contains(errOut, "secretsfs.yaml:2: files[0]: secret is missing") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{{"check"}, {"check", "--config", p, "extra"}, {"check", "--bogus"}} {
		if code, _, _ := runArgs(t, act, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestDefect9_22_CheckAndMountAgreeOnABadMappingFile: a mapping file with
// problems is refused with exit code 2 by mount and by check alike, as the
// README's mapping section says, each problem named with its line.
func TestDefect9_22_CheckAndMountAgreeOnABadMappingFile(t *testing.T) {
	var s mountStub
	checked := false
	act := s.actions()
	act.check = func(context.Context, mount.Config, io.Writer) error {
		checked = true
		return nil
	}
	for _, text := range []string{"files:\n  - path: a\n", "files:\n  - path: a\n   secret: b\n", "refresh_intervall: 1s\n"} {
		p := writeMapping(t, text)
		for _, cmd := range [][]string{{"mount", "--config", p, "/mnt/s"}, {"check", "--config", p}} {
			code, _, errOut := runArgs(t, act, cmd...)
			if code != 2 || !strings.Contains(errOut, "secretsfs.yaml:") || s.calls != 0 || checked {
				t.Errorf("%s on %q: exit %d, stderr %q; want 2 naming the line, and nothing run", cmd[0], text, code, errOut)
			}
		}
	}
}

// manSection returns the body of the man page's section NAME (".SH NAME"
// up to the next ".SH"), or "".
func manSection(page, name string) string {
	_, rest, ok := strings.Cut(page, "\n.SH "+name+"\n")
	if !ok {
		return ""
	}
	body, _, _ := strings.Cut(rest, "\n.SH ")
	return body
}

// TestIssue10_08_ManPageListsEveryEnvironmentVariable: secretsfs(1) lists
// the environment variable of every flag of every command (taken from the
// command-line definition here, so a flag added later is checked too), and
// no other SECRETSFS_ variable; it names the settings files the units read
// and points at the fstab helper's page with the helper's own options.
func TestIssue10_08_ManPageListsEveryEnvironmentVariable(t *testing.T) {
	code, page, errOut := runArgs(t, actions{}, "gen", "man")
	if code != 0 {
		t.Fatalf("gen man: %d %s", code, errOut)
	}
	env := manSection(page, "ENVIRONMENT")
	if env == "" {
		t.Fatalf("no ENVIRONMENT section:\n%s", page)
	}
	want := map[string]bool{}
	for _, cmd := range newApp(actions{}, io.Discard, io.Discard).Commands {
		if cmd.Hidden {
			continue
		}
		for _, f := range cmd.Flags {
			if df, ok := f.(cli.DocGenerationFlag); ok {
				for _, v := range df.GetEnvVars() {
					want[v] = true
					if !strings.Contains(env, `\fB`+v+`\fR`) {
						t.Errorf("ENVIRONMENT lacks %s (flag --%s of %s)", v, f.Names()[0], cmd.Name)
					}
				}
			}
		}
	}
	if len(want) < 30 {
		t.Fatalf("only %d variables found in the flags", len(want))
	}
	for _, m := range regexp.MustCompile(`SECRETSFS_[A-Z0-9_]+`).FindAllString(env, -1) {
		if !want[m] {
			t.Errorf("ENVIRONMENT lists %s, which no flag reads", m)
		}
	}
	for section, phrases := range map[string][]string{
		"ENVIRONMENT":              {"AWS_REGION", "comma"},
		"FILES":                    {"/etc/secretsfs/secretsfs.env", "/etc/secretsfs/NAME.env", "secretsfs@NAME.service"},
		"MOUNTING FROM /etc/fstab": {"fuse.secretsfs", "mount.fuse.secretsfs (8)", "env-file=", "log-file=", "mount-timeout="},
		"SEE ALSO":                 {"mount.fuse.secretsfs (8)", "systemd.exec (5)", "fstab (5)"},
	} {
		body := manSection(page, section)
		for _, p := range phrases {
			if !strings.Contains(strings.ReplaceAll(body, `\fR(`, " ("), p) {
				t.Errorf("section %s lacks %q:\n%s", section, p, body)
			}
		}
	}
}

// Run as /sbin/mount.fuse.secretsfs or mount.secretsfs (links to the
// binary), secretsfs is the mount(8) helper and gets mount(8)'s arguments.
func TestFstabHelperDispatch(t *testing.T) {
	for _, argv0 := range []string{"/sbin/mount.fuse.secretsfs", "mount.secretsfs"} {
		var got []string
		act := actions{fstab: func(_ context.Context, args []string, _ io.Writer) int {
			got = args
			return 32
		}}
		var out, errOut bytes.Buffer
		code := run(context.Background(), act, []string{argv0, "none", "/mnt", "-o", "rw"}, &out, &errOut)
		if code != 32 || !slices.Equal(got, []string{argv0, "none", "/mnt", "-o", "rw"}) {
			t.Errorf("%s: exit %d, helper got %q", argv0, code, got)
		}
	}
}

// Issue 10, item 2: every flag of "secretsfs mount" is an fstab option,
// with "_" or "-", also under mount -s (which used to drop the ones the
// helper did not know, such as max_stale). The list is the command's own
// flag definitions: a flag added later is covered without touching this
// test, and a flag of a new type fails it until it gets a sample value.
func TestIssue10_02_EveryMountFlagIsAnFstabOption(t *testing.T) {
	dir := t.TempDir()
	// The daemon: a script that records its arguments.
	argsFile := filepath.Join(dir, "args")
	exe := filepath.Join(dir, "secretsfs")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > "+argsFile+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var options []string
	want := map[string]string{}
	for i, f := range mountFlags() {
		name := f.Names()[0]
		opt := name
		if i%2 == 0 {
			opt = strings.ReplaceAll(name, "-", "_")
		}
		switch f := f.(type) {
		case *cli.BoolFlag:
			options = append(options, opt)
			want[name] = "true"
		case *cli.DurationFlag:
			options = append(options, opt+"=90s")
			want[name] = "1m30s"
		case *cli.IntFlag, *cli.UintFlag:
			options = append(options, opt+"=7")
			want[name] = "7"
		case *cli.Float64Flag:
			options = append(options, opt+"=1.5")
			want[name] = "1.5"
		case *cli.StringFlag:
			options = append(options, opt+"=sample-"+name)
			want[name] = "sample-" + name
		case *cli.StringSliceFlag:
			options = append(options, opt+"=a-"+name, opt+"=b-"+name)
			want[name] = "[a-" + name + " b-" + name + "]"
		case *cli.GenericFlag:
			switch f.Value.(type) {
			case *oneValue[uint32]:
				options = append(options, opt+"=7")
				want[name] = "7"
			case *oneValue[os.FileMode]:
				options = append(options, opt+"=0440")
				want[name] = fmt.Sprint(os.FileMode(0o440))
			case *listValue[string]:
				options = append(options, opt+"=a-"+name, opt+"=b-"+name)
				want[name] = "[a-" + name + " b-" + name + "]"
			case *listValue[mount.Tag]:
				options = append(options, opt+"=a="+name, opt+"=b="+name)
				want[name] = "[a=" + name + " b=" + name + "]"
			default:
				t.Fatalf("flag --%s has a value %T: give this test a sample value for it", name, f.Value)
			}
		default:
			t.Fatalf("flag --%s is a %T: give this test a sample value for it", name, f)
		}
	}
	for _, sloppy := range []bool{false, true} {
		os.Remove(argsFile)
		args := []string{"/sbin/mount.fuse.secretsfs", "secretsfs", "/mnt/x", "-o", "rw,nosuid," + strings.Join(options, ",")}
		if sloppy {
			args = append(args, "-s")
		}
		var stderr bytes.Buffer
		h := fstab.Helper{Flags: mountFlags(), Exe: exe, Environ: []string{"PATH=/usr/bin:/bin"}, Stderr: &stderr}
		if status := h.Run(context.Background(), args); status != 32 || strings.Contains(stderr.String(), "option") {
			t.Fatalf("sloppy %v: status %d, stderr %q; want the daemon started (and failing, 32) with no complaint about an option", sloppy, status, stderr.String())
		}
		data, err := os.ReadFile(argsFile)
		if err != nil {
			t.Fatal(err)
		}
		daemonArgs := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		// The daemon's command line, parsed by the mount command's flags.
		got := map[string]string{}
		app := &cli.App{Name: "secretsfs", Commands: []*cli.Command{{
			Name: "mount", Flags: mountFlags(),
			Action: func(c *cli.Context) error {
				if c.Args().First() != "/mnt/x" {
					t.Errorf("MOUNTPOINT = %q", c.Args().First())
				}
				for _, f := range mountFlags() {
					name := f.Names()[0]
					if _, list := f.(*cli.StringSliceFlag); list && c.IsSet(name) {
						got[name] = fmt.Sprint(c.StringSlice(name))
					} else if c.IsSet(name) {
						got[name] = fmt.Sprint(c.Value(name))
					}
				}
				return nil
			},
		}}}
		if err := app.Run(append([]string{"secretsfs"}, daemonArgs...)); err != nil {
			t.Fatalf("the daemon's arguments %q do not parse: %v", daemonArgs, err)
		}
		for name, w := range want {
			if got[name] != w {
				t.Errorf("sloppy %v: --%s = %q, want %q", sloppy, name, got[name], w)
			}
		}
	}
	// Not everything is accepted: an unknown option is still refused.
	var stderr bytes.Buffer
	h := fstab.Helper{Flags: mountFlags(), Exe: exe, Stderr: &stderr}
	if status := h.Run(context.Background(), []string{"mount.fuse.secretsfs", "none", "/mnt/x", "-o", "colour=blue"}); status != 1 ||
		!strings.Contains(stderr.String(), "unknown option colour=blue") {
		t.Fatalf("colour=blue: status %d, %q", status, stderr.String())
	}
}

// Issue 10, item 7: the helper's man page, generated from this command
// line, lists every flag of "secretsfs mount" as an fstab option, and the
// helper's own options.
func TestIssue10_07_FstabManPageListsEveryOption(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), actions{}, []string{"secretsfs", "gen", "fstab-man"}, &out, io.Discard); code != 0 {
		t.Fatalf("gen fstab-man exited %d", code)
	}
	page := out.String()
	for _, f := range mountFlags() {
		name := strings.ReplaceAll(f.Names()[0], "-", "_")
		if !strings.Contains(page, `\fB`+name+`\fP`) {
			t.Errorf("the man page lacks the option %s", name)
		}
	}
	for _, o := range fstab.OwnOptions() {
		if !strings.Contains(page, `\fB`+o.Name+`\fP=\fI`+o.Value+`\fP`) {
			t.Errorf("the man page lacks the helper's option %s=%s", o.Name, o.Value)
		}
	}
}

// TestEveryMountFlagIsBound: each flag of "secretsfs mount", set alone to a
// value other than its default, changes the configuration the command
// hands to the daemon. The list is the command's own flag definitions, so a
// flag added later without a binding fails here; a flag of a new type fails
// until it gets a sample value.
func TestEveryMountFlagIsBound(t *testing.T) {
	mappingPath := writeMapping(t, "files:\n  - path: x\n    secret: a\n")
	// parse runs the mount command's flags and returns the configuration
	// they make, valid or not. The on-change command is always given: the
	// hook's other flags only reach the configuration with a hook.
	parse := func(args ...string) mount.Config {
		t.Helper()
		a := newMountArgs()
		var cfg mount.Config
		app := &cli.App{Name: "secretsfs", Commands: []*cli.Command{{
			Name: "mount", Flags: a.flags(),
			Action: func(c *cli.Context) error {
				cfg, _ = a.mountConfig(c) // Validate's verdict is not the point
				return nil
			},
		}}}
		args = append([]string{"secretsfs", "mount", "--on-change-command", "base"}, args...)
		if err := app.Run(append(args, "/mnt/x")); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		return cfg
	}
	base := parse()
	flags := newMountArgs().flags()
	if len(flags) < 30 {
		t.Fatalf("only %d flags", len(flags))
	}
	for _, f := range flags {
		name := f.Names()[0]
		var value string
		switch f := f.(type) {
		case *cli.BoolFlag:
			value = fmt.Sprint(!f.Value)
		case *cli.DurationFlag:
			value = (f.Value + 17*time.Second).String()
		case *cli.IntFlag:
			value = fmt.Sprint(f.Value + 1)
		case *cli.Float64Flag:
			value = fmt.Sprint(f.Value + 0.5)
		case *cli.StringFlag:
			value = "sample-" + name
			if f.TakesFile {
				value = mappingPath
			}
		case *cli.GenericFlag:
			switch f.Value.(type) {
			case *oneValue[uint32]:
				value = "4242"
			case *oneValue[os.FileMode]:
				value = "0111"
			case *listValue[string]:
				value = "sample"
			case *listValue[mount.Tag]:
				value = "k=v"
			default:
				t.Fatalf("flag --%s has a value %T: give this test a sample value for it", name, f.Value)
			}
		default:
			t.Fatalf("flag --%s is a %T: give this test a sample value for it", name, f)
		}
		if got := parse("--" + name + "=" + value); reflect.DeepEqual(got, base) {
			t.Errorf("--%s=%s leaves the configuration as it was: the flag is bound to nothing", name, value)
		}
	}
}

// TestListFlagsFromTheCommandLineReplaceTheEnvironment: a repeatable flag
// given on the command line replaces, not extends, the values of its
// variable; the variable alone is split at commas.
func TestListFlagsFromTheCommandLineReplaceTheEnvironment(t *testing.T) {
	t.Setenv("SECRETSFS_PREFIX", "a/, b/")
	t.Setenv("SECRETSFS_TAG", "env=prod")
	var s mountStub
	if code, _, errOut := runArgs(t, s.actions(), "mount", "--prefix", "c/", "--prefix", "d/,e/", "/m"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := []string{"c/", "d/", "e/"}; !slices.Equal(s.cfg.Prefixes, want) {
		t.Errorf("Prefixes = %q, want %q", s.cfg.Prefixes, want)
	}
	if want := []mount.Tag{{Key: "env", Value: "prod"}}; !slices.Equal(s.cfg.Tags, want) {
		t.Errorf("Tags = %v, want %v", s.cfg.Tags, want)
	}
	if code, _, errOut := runArgs(t, s.actions(), "mount", "/m"); code != 0 || !slices.Equal(s.cfg.Prefixes, []string{"a/", "b/"}) {
		t.Errorf("exit %d, Prefixes %q: %s", code, s.cfg.Prefixes, errOut)
	}
}

// TestIssue14_14_CSIFlags: "secretsfs csi" hands its flags (or their
// variables) to the driver; each bad flag is a usage error naming itself
// and the fix, and nothing is served.
func TestIssue14_14_CSIFlags(t *testing.T) {
	for _, v := range []string{"SECRETSFS_ENDPOINT", "SECRETSFS_NODE_ID", "SECRETSFS_REGION", "SECRETSFS_ENDPOINT_URL", "SECRETSFS_STS_ENDPOINT_URL", "SECRETSFS_POD_IDENTITY_AGENT_URL", "SECRETSFS_LOG_LEVEL", "SECRETSFS_LOG_FORMAT"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	var got []csi.Config
	act := actions{csi: func(_ context.Context, cfg csi.Config, _ io.Writer) error {
		got = append(got, cfg)
		return nil
	}}
	t.Setenv("SECRETSFS_NODE_ID", "node-7")
	code, _, errOut := runArgs(t, act, "csi", "--endpoint=unix:///csi/csi.sock", "--region=eu-west-1", "--sts-endpoint-url=http://127.0.0.1:9765", "--log-format=json")
	if code != 0 || len(got) != 1 {
		t.Fatalf("exit %d, %d calls: %s", code, len(got), errOut)
	}
	c := got[0]
	if c.Endpoint != "unix:///csi/csi.sock" || c.NodeID != "node-7" || c.Region != "eu-west-1" || c.STSEndpointURL != "http://127.0.0.1:9765" ||
		c.PodIdentityAgentURL != "http://169.254.170.23/v1/credentials" || c.LogFormat != "json" || c.LogLevel != "info" || c.Version == "" {
		t.Fatalf("config %+v", c)
	}

	os.Unsetenv("SECRETSFS_NODE_ID")
	for _, tc := range []struct {
		args    []string
		mention []string
	}{
		{[]string{"--node-id=n"}, []string{"--endpoint: missing; give the unix socket to serve on, e.g. unix:///csi/csi.sock"}},
		{[]string{"--endpoint=unix:///csi/csi.sock"}, []string{"--node-id: missing", "spec.nodeName"}},
		{[]string{"--endpoint=tcp://0.0.0.0:1", "--node-id=n"}, []string{`--endpoint: is "tcp://0.0.0.0:1"; give a unix socket`}},
		{[]string{"--endpoint=unix://csi.sock", "--node-id=n"}, []string{`--endpoint: is "unix://csi.sock"; give an absolute socket path`}},
		{[]string{"--endpoint=unix:///csi/csi.sock", "--node-id=n", "--region=Mars 1"}, []string{`--region: is "Mars 1"`}},
		{[]string{"--endpoint=unix:///csi/csi.sock", "--node-id=n", "--endpoint-url=sm.local"}, []string{`--endpoint-url: is "sm.local"`}},
		{[]string{"--endpoint=unix:///csi/csi.sock", "--node-id=n", "--sts-endpoint-url=sts"}, []string{`--sts-endpoint-url: is "sts"; give an absolute URL`}},
		{[]string{"--endpoint=unix:///csi/csi.sock", "--node-id=n", "--pod-identity-agent-url="}, []string{`--pod-identity-agent-url: is ""; give an absolute URL`}},
		{[]string{"--endpoint=unix:///csi/csi.sock", "--node-id=n", "--log-level=loud"}, []string{`--log-level: is "loud"`}},
		{[]string{"--endpoint=unix:///csi/csi.sock", "--node-id=n", "extra"}, []string{"csi takes no arguments"}},
	} {
		got = nil
		code, _, errOut := runArgs(t, act, append([]string{"csi"}, tc.args...)...)
		if code != 2 || len(got) != 0 {
			t.Errorf("%v: exit %d, %d calls; want exit 2 and no call", tc.args, code, len(got))
		}
		for _, m := range tc.mention {
			if !strings.Contains(errOut, m) {
				t.Errorf("%v: stderr %q\ndoes not mention %q", tc.args, errOut, m)
			}
		}
	}
}
