// Command secretsfs serves AWS Secrets Manager secrets as files through FUSE.
//
// This file only wires command-line flags to configuration and hands them to
// the functions that do the work; those functions are injected so that flag
// parsing is tested without mounting anything or starting a server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/mount"
	"github.com/secretsfs/secretsfs/mount/csi"
	"github.com/secretsfs/secretsfs/mount/mapping"
	"github.com/secretsfs/secretsfs/packaging/cligen"
	"github.com/secretsfs/secretsfs/packaging/fstab"
	"github.com/secretsfs/secretsfs/test/emulator"
)

// version is set at build time with -ldflags "-X main.version=1.2.3"; when it
// is empty the module version or VCS revision recorded by the Go toolchain is
// used instead.
var version string

// actions are the functions the commands call once their flags are parsed.
type actions struct {
	// emulator runs the Secrets Manager emulator until ctx ends, printing
	// its URL to stdout and its log to stderr.
	emulator func(ctx context.Context, cfg emulator.CommandConfig, stdout, stderr io.Writer) error
	// mount runs the daemon until ctx ends (mount.Run).
	mount func(ctx context.Context, cfg mount.Config, env mount.Env) error
	// demo runs the daemon against the built-in emulator (demoRunner.run).
	demo func(ctx context.Context, cfg demoConfig, stdout, stderr io.Writer) error
	// check checks a mapping file against Secrets Manager without mounting
	// (mount.Check).
	check func(ctx context.Context, cfg mount.Config, stdout io.Writer) error
	// fstab runs the mount(8) helper (fstab.Helper) with mount(8)'s
	// arguments and returns its exit status.
	fstab func(ctx context.Context, args []string, stderr io.Writer) int
	// csi runs the CSI node driver until ctx ends (csi.Run).
	csi func(ctx context.Context, cfg csi.Config, stderr io.Writer) error
}

// defaultActions returns the real implementations.
func defaultActions() actions {
	return actions{
		emulator: runEmulator,
		mount:    mount.Run,
		demo:     demoRunner{daemon: mount.Run, clock: cache.SystemClock()}.run,
		check:    mount.Check,
		fstab:    runFstabHelper,
		csi:      csi.Run,
	}
}

// runFstabHelper is the real mount(8) helper: it starts this very binary as
// "secretsfs mount".
func runFstabHelper(ctx context.Context, args []string, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "%s: cannot find the secretsfs binary: %v\n", args[0], err)
		return 1
	}
	return fstab.Helper{Flags: mountFlags(), Exe: exe, Environ: os.Environ(), Stderr: stderr}.Run(ctx, args)
}

// runEmulator is the real emulator action.
func runEmulator(ctx context.Context, cfg emulator.CommandConfig, stdout, stderr io.Writer) error {
	return emulator.RunCommand(ctx, cfg, stdout, slog.New(slog.NewTextHandler(stderr, nil)))
}

// defaultEmulatorListen is where "secretsfs emulator" listens unless told
// otherwise: loopback only, on a fixed port so the URL can be written down.
const defaultEmulatorListen = "127.0.0.1:9765"

// emulatorCommand is "secretsfs emulator".
func emulatorCommand(act actions) *cli.Command {
	cfg := emulator.CommandConfig{Listen: defaultEmulatorListen}
	return &cli.Command{
		Name:      "emulator",
		Usage:     "run a local AWS Secrets Manager emulator for development and tests",
		ArgsUsage: " ",
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Description: "Serves an in-memory AWS Secrets Manager on --listen (loopback by default) until\n" +
			"SIGINT or SIGTERM, and prints its endpoint URL on the first line of stdout once\n" +
			"it is ready. Point the AWS CLI or SDK at it with --endpoint-url URL or\n" +
			"AWS_ENDPOINT_URL=URL; any access key works. --seed preloads secrets from a JSON\n" +
			"file. Test controls (call counts, fault injection) are under URL/_emulator/.",
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:        "listen",
				Value:       cfg.Listen,
				Destination: &cfg.Listen,
				EnvVars:     []string{"SECRETSFS_EMULATOR_LISTEN"},
				Usage:       "`HOST:PORT` to listen on; port 0 picks a free one. A non-loopback address exposes every secret without authentication. Only requests whose Host header is a loopback name or HOST are answered (any, for 0.0.0.0 or ::)",
			},
			&cli.StringFlag{
				Name:        "seed",
				Destination: &cfg.SeedFile,
				EnvVars:     []string{"SECRETSFS_EMULATOR_SEED"},
				Usage:       "JSON `FILE` of secrets to preload (format: see the README)",
				TakesFile:   true,
			},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("emulator takes no arguments, got %q", c.Args().First())}
			}
			if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
				return usageError{fmt.Errorf("--listen %q: want HOST:PORT, e.g. 127.0.0.1:9765 (%v)", cfg.Listen, err)}
			}
			if cfg.SeedFile != "" {
				if _, err := os.Stat(cfg.SeedFile); err != nil {
					return usageError{fmt.Errorf("--seed: %w", err)}
				}
			}
			return act.emulator(c.Context, cfg, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// buildVersion reports the version of this binary.
func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "devel-" + rev + dirty
}

// newApp builds the command-line application around the given actions.
func newApp(act actions, stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "secretsfs",
		Usage:     "serve AWS Secrets Manager secrets as read-only files",
		Version:   buildVersion(),
		Writer:    stdout,
		ErrWriter: stderr,
		// Errors are printed once by main, with the exit code chosen there.
		ExitErrHandler:       func(*cli.Context, error) {},
		HideVersion:          false,
		EnableBashCompletion: true,
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Commands: []*cli.Command{
			mountCommand(act),
			checkCommand(act),
			demoCommand(act),
			csiCommand(act),
			emulatorCommand(act),
			{
				Name:  "version",
				Usage: "print the version of secretsfs",
				Action: func(c *cli.Context) error {
					_, err := fmt.Fprintf(c.App.Writer, "secretsfs %s\n", buildVersion())
					return err
				},
			},
			{
				// For packaging: the man page and completion scripts come
				// from this very command-line definition.
				Name:      "gen",
				Hidden:    true,
				Usage:     "write the man page or a shell completion script to stdout, or every man page into DIR",
				ArgsUsage: strings.Join(cligen.Kinds(), "|") + " | man DIR",
				Action: func(c *cli.Context) error {
					if c.Args().First() == "man" && c.NArg() == 2 {
						return cligen.WriteManPages(c.App, c.Args().Get(1))
					}
					return cligen.Write(c.App, c.Args().First(), c.App.Writer)
				},
			},
		},
	}
}

// usageError marks a mistake in the command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode chooses the process exit code for the error a command returned.
func exitCode(err error) int {
	var ue usageError
	var ec cli.ExitCoder
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &ec):
		return ec.ExitCode()
	default:
		return 1
	}
}

// run is main without the process exit, for tests. Run under the name of
// the mount(8) helper (/sbin/mount.fuse.secretsfs is a symbolic link to the
// binary), it is the helper.
func run(ctx context.Context, act actions, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && fstab.IsHelper(args[0]) {
		return act.fstab(ctx, args, stderr)
	}
	err := newApp(act, stdout, stderr).RunContext(ctx, args)
	if err != nil {
		fmt.Fprintf(stderr, "secretsfs: %v\n", err)
	}
	return exitCode(err)
}

func main() {
	// A write to stdout or stderr after their reader went away (the fstab
	// helper reads the daemon's stderr until the mount serves, then exits)
	// must fail with EPIPE, not kill the daemon and leave its mount
	// answering ENOTCONN. Asking for
	// SIGPIPE does that; unlike signal.Ignore it is not inherited by the
	// on_change commands, which get the default disposition.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, defaultActions(), os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// envVar is the environment variable of a mount flag: SECRETSFS_ and the
// flag's name in upper case with dashes as underscores.
func envVar(flag string) []string {
	return []string{"SECRETSFS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

// Flag categories in the help text.
const (
	catCache   = "Cache"
	catAWS     = "AWS"
	catFiles   = "Files"
	catListing = "Which secrets"
	catLogs    = "Logs"
	catChange  = "Reacting to change"
	catMapping = "Mapping file"
	catObserve = "Observability and memory"
)

// mountArgs is what the flags of "secretsfs mount" and "check" are bound
// to: the daemon's configuration, and the few flags that are not a field of
// it. Each command makes its own, so every parse starts from the defaults.
type mountArgs struct {
	cfg             mount.Config
	config          string           // --config: the mapping file
	onChangeCommand string           // --on-change-command
	onChange        mapping.OnChange // --on-change-signal, -pidfile and -debounce
}

// newMountArgs holds the defaults: mount.DefaultConfig's, and the hook's
// debounce.
func newMountArgs() *mountArgs {
	a := &mountArgs{cfg: mount.DefaultConfig()}
	a.onChange.Debounce = mount.DefaultDebounce
	return a
}

// mountFlags are the flags of "secretsfs mount", for those that only need
// their definitions (the fstab helper).
func mountFlags() []cli.Flag { return newMountArgs().flags() }

// about is the help of a flag.
type about struct {
	cat, usage  string
	defaultText string // shown as the default instead of the value
	file        bool   // the value names a file
}

// The flag helpers take the flag's name once, derive its environment
// variable and bind it to dst, whose value is the default.

func durationFlag(name string, dst *time.Duration, a about) cli.Flag {
	return &cli.DurationFlag{Name: name, Category: a.cat, Usage: a.usage, DefaultText: a.defaultText, EnvVars: envVar(name), Value: *dst, Destination: dst}
}

func intFlag(name string, dst *int, a about) cli.Flag {
	return &cli.IntFlag{Name: name, Category: a.cat, Usage: a.usage, DefaultText: a.defaultText, EnvVars: envVar(name), Value: *dst, Destination: dst}
}

func float64Flag(name string, dst *float64, a about) cli.Flag {
	return &cli.Float64Flag{Name: name, Category: a.cat, Usage: a.usage, DefaultText: a.defaultText, EnvVars: envVar(name), Value: *dst, Destination: dst}
}

func stringFlag(name string, dst *string, a about) cli.Flag {
	return &cli.StringFlag{Name: name, Category: a.cat, Usage: a.usage, DefaultText: a.defaultText, TakesFile: a.file, EnvVars: envVar(name), Value: *dst, Destination: dst}
}

func boolFlag(name string, dst *bool, a about) cli.Flag {
	return &cli.BoolFlag{Name: name, Category: a.cat, Usage: a.usage, DefaultText: a.defaultText, EnvVars: envVar(name), Value: *dst, Destination: dst}
}

// valueFlag is a flag whose value is one of the types below.
func valueFlag(name string, v cli.Generic, a about) *cli.GenericFlag {
	return &cli.GenericFlag{Name: name, Category: a.cat, Usage: a.usage, DefaultText: a.defaultText, TakesFile: a.file, EnvVars: envVar(name), Value: v}
}

// modeFlag is an octal permission.
func modeFlag(name string, dst *os.FileMode, a about) cli.Flag {
	return valueFlag(name, &oneValue[os.FileMode]{flag: name, dst: dst, parse: mount.ParseMode,
		format: func(m os.FileMode) string { return fmt.Sprintf("%04o", uint32(m)) }}, a)
}

// idFlag is a numeric user or group id.
func idFlag(name string, dst *uint32, a about) cli.Flag {
	return valueFlag(name, &oneValue[uint32]{flag: name, dst: dst, parse: parseID,
		format: func(id uint32) string { return strconv.FormatUint(uint64(id), 10) }}, a)
}

// parseID reads a numeric user or group id.
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%s is too large; give a numeric id below 2^32", s)
	case err != nil:
		return 0, fmt.Errorf("%q is not a numeric id; give a number such as 1000", s)
	}
	return uint32(n), nil
}

// listFlag is a repeatable flag: each value, split at commas, is parsed and
// appended to *dst. Values from the command line replace those from the
// environment, as for urfave's own slice flags.
func listFlag[T any](name string, dst *[]T, parse func(string) (T, error), a about) cli.Flag {
	f := valueFlag(name, &listValue[T]{flag: name, dst: dst, parse: parse}, a)
	f.Destination = &listValue[T]{flag: name, dst: dst, parse: parse, replace: true}
	return f
}

// oneValue is the value of a flag parsed into *dst; its errors name the
// flag.
type oneValue[T any] struct {
	flag   string
	dst    *T
	parse  func(string) (T, error)
	format func(T) string
}

func (v *oneValue[T]) Set(s string) error {
	t, err := v.parse(s)
	if err != nil {
		return fmt.Errorf("--%s: %w", v.flag, err)
	}
	*v.dst = t
	return nil
}

// Get makes the value a flag.Getter, for cli.Context.Value.
func (v *oneValue[T]) Get() any { return *v.dst }

func (v *oneValue[T]) String() string {
	if v == nil || v.dst == nil {
		return ""
	}
	return v.format(*v.dst)
}

// listValue is the value of a listFlag.
type listValue[T any] struct {
	flag    string
	dst     *[]T
	parse   func(string) (T, error)
	replace bool // the next Set empties *dst first
}

func (v *listValue[T]) Set(s string) error {
	if v.replace {
		*v.dst, v.replace = nil, false
	}
	for _, e := range strings.Split(s, ",") {
		t, err := v.parse(strings.TrimSpace(e))
		if err != nil {
			return fmt.Errorf("--%s: %w", v.flag, err)
		}
		*v.dst = append(*v.dst, t)
	}
	return nil
}

// Get makes the value a flag.Getter, for cli.Context.Value.
func (v *listValue[T]) Get() any { return *v.dst }

func (v *listValue[T]) String() string {
	if v == nil || v.dst == nil {
		return ""
	}
	s := make([]string, len(*v.dst))
	for i, e := range *v.dst {
		s[i] = fmt.Sprint(e)
	}
	return strings.Join(s, ",")
}

// repeatable marks the values of flags that take several values.
func (v *listValue[T]) repeatable() {}

// isList tells whether f takes several values.
func isList(f cli.Flag) bool {
	g, ok := f.(*cli.GenericFlag)
	if !ok {
		return false
	}
	_, list := g.Value.(interface{ repeatable() })
	return list
}

// anyString is the parse of a list of strings.
func anyString(s string) (string, error) { return s, nil }

// flags are the flags of "secretsfs mount", each bound to its field of a.
func (a *mountArgs) flags() []cli.Flag {
	c, f := &a.cfg, &a.cfg.Features
	return []cli.Flag{
		durationFlag("refresh-interval", &c.RefreshInterval, about{cat: catCache,
			usage: fmt.Sprintf("how long a secret's metadata is trusted before it is asked for again (at least %v); shorter shows rotations sooner and costs more DescribeSecret calls", mount.MinRefreshInterval)}),
		intFlag("max-cache-size", &c.MaxCacheSize, about{cat: catCache,
			usage: "how many secrets the cache keeps"}),
		durationFlag("retry-delay-base", &c.RetryDelayBase, about{cat: catCache,
			usage: fmt.Sprintf("wait after a secret's first failed refresh (at least %v)", mount.MinRetryDelayBase)}),
		float64Flag("retry-growth-factor", &c.RetryGrowthFactor, about{cat: catCache,
			usage: "factor the wait grows by after each further failure (at least 1)"}),
		durationFlag("retry-delay-max", &c.RetryDelayMax, about{cat: catCache,
			usage: fmt.Sprintf("longest wait between retries (at least %v)", mount.MinRetryDelayMax)}),
		stringFlag("default-stage", &c.DefaultStage, about{cat: catCache,
			usage: "`STAGE` whose value a JSON secret's key files show"}),

		stringFlag("region", &c.Region, about{cat: catAWS,
			usage: "AWS `REGION` (default: the SDK's, e.g. AWS_REGION)"}),
		stringFlag("profile", &c.Profile, about{cat: catAWS,
			usage: "shared configuration `PROFILE` (default: the SDK's, e.g. AWS_PROFILE)"}),
		stringFlag("endpoint-url", &c.EndpointURL, about{cat: catAWS,
			usage: "Secrets Manager endpoint `URL` (default: the SDK's; AWS_ENDPOINT_URL_SECRETS_MANAGER is honoured)"}),
		stringFlag("role-arn", &c.RoleARN, about{cat: catAWS,
			usage: "IAM role `ARN` to assume through STS for every call"}),

		idFlag("uid", &c.UID, about{cat: catFiles, defaultText: "the mounting user",
			usage: "numeric owner `ID` of every file and directory"}),
		idFlag("gid", &c.GID, about{cat: catFiles, defaultText: "the mounting user's",
			usage: "numeric group `ID` of every file and directory"}),
		modeFlag("file-mode", &c.FileMode, about{cat: catFiles,
			usage: "permission of secret files, in `OCTAL`"}),
		modeFlag("dir-mode", &c.DirMode, about{cat: catFiles,
			usage: "permission of directories, in `OCTAL`"}),
		boolFlag("allow-other", &c.AllowOther, about{cat: catFiles,
			usage: "let other users into the mount; the kernel then enforces the modes (as non-root: user_allow_other in /etc/fuse.conf)"}),
		stringFlag("fsname", &c.FsName, about{cat: catFiles,
			usage: "the filesystem's `NAME` (source) in /proc/mounts; the fstab helper gives the entry's first field, by which mount -a knows the entry is mounted"}),
		boolFlag("handover", &c.Handover, about{cat: catFiles,
			usage: "for containers that bind the mount point (hostPath with mountPropagation HostToContainer): leave it mounted at exit, and mount over what a previous daemon left there, so that they see each new daemon's mount"}),
		boolFlag("kernel-cache", &c.KernelCache, about{cat: catFiles,
			usage: "fast mode: reads are served from the kernel's page cache until a version changes (no per-open snapshot or audit)"}),

		listFlag("prefix", &c.Prefixes, anyString, about{cat: catListing,
			usage: "show only secrets whose names start with `PREFIX` (repeatable; comma-separated in the variable)"}),
		listFlag("tag", &c.Tags, mount.ParseTag, about{cat: catListing,
			usage: "show only secrets carrying tag `KEY=VALUE` (repeatable, all must match; comma-separated in the variable)"}),
		durationFlag("list-interval", &c.ListInterval, about{cat: catListing,
			usage: fmt.Sprintf("how often the secrets are listed again (at least %v)", mount.MinListInterval)}),
		listFlag("secret", &c.Secrets, anyString, about{cat: catListing,
			usage: "show only this secret, by name or ARN `ID` (repeatable); no ListSecrets permission needed"}),

		stringFlag("log-level", &c.LogLevel, about{cat: catLogs,
			usage: "debug, info, warn or error"}),
		stringFlag("log-format", &c.LogFormat, about{cat: catLogs,
			usage: "text or json"}),
		stringFlag("log-file", &c.LogFile, about{cat: catLogs, file: true, defaultText: "stderr",
			usage: "append the log to `FILE` (created with mode 0600; reopened on SIGHUP and after a rotation)"}),
		boolFlag("syslog", &c.Syslog, about{cat: catLogs,
			usage: "send the log to the system log (the journal under systemd); stderr where there is none"}),

		stringFlag("config", &a.config, about{cat: catMapping, file: true,
			usage: "mapping `FILE` (YAML): files at chosen paths, formats, templates, settings; the mount then shows only those files"}),
		boolFlag("expose-all", &c.ExposeAll, about{cat: catMapping,
			usage: "with --config, also show the default layout beside the mapped files"}),

		stringFlag("on-change-command", &a.onChangeCommand, about{cat: catChange,
			usage: "`COMMAND` run with /bin/sh -c when files' content changes, once per burst; SECRETSFS_PATHS names the files"}),
		stringFlag("on-change-signal", &a.onChange.Signal, about{cat: catChange,
			usage: "`SIGNAL` (e.g. HUP) sent to the pid in --on-change-pidfile when a file's content changes"}),
		stringFlag("on-change-pidfile", &a.onChange.PIDFile, about{cat: catChange, file: true,
			usage: "`FILE` holding the pid that --on-change-signal goes to"}),
		durationFlag("on-change-debounce", &a.onChange.Debounce, about{cat: catChange,
			usage: "how long the files must stay unchanged before the on-change hook runs, once for all of them"}),
		durationFlag("max-stale", &f.MaxStale, about{cat: catChange, defaultText: "no bound",
			usage: "while refreshes fail, serve a cached value at most this long after its last successful refresh, then EIO"}),

		stringFlag("metrics-listen", &f.MetricsListen, about{cat: catObserve,
			usage: "serve Prometheus /metrics and /healthz on `HOST:PORT` (loopback only unless --metrics-allow-remote)"}),
		boolFlag("metrics-allow-remote", &f.MetricsAllowRemote, about{cat: catObserve,
			usage: "allow a --metrics-listen address other than loopback"}),
		stringFlag("audit-log", &f.AuditLog, about{cat: catObserve, file: true,
			usage: "append one JSON line per open of a secret file to `FILE` (- for stderr); needs the per-open mode"}),
		boolFlag("no-mlock", &f.NoMlock, about{cat: catObserve,
			usage: "do not lock the daemon's memory (mlockall); secrets may then be swapped to disk"}),
	}
}

// mountCommand is "secretsfs mount".
func mountCommand(act actions) *cli.Command {
	a := newMountArgs()
	return &cli.Command{
		Name:      "mount",
		Usage:     "mount the secrets on MOUNTPOINT and serve them until SIGINT or SIGTERM",
		ArgsUsage: "MOUNTPOINT",
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{fmt.Errorf("%w (see secretsfs mount --help)", err)}
		},
		Description: "Serves AWS Secrets Manager secrets as read-only files under MOUNTPOINT, in the\n" +
			"foreground, until SIGINT or SIGTERM; SIGHUP refreshes every cached secret at once\n" +
			"and reopens the --audit-log file.\n" +
			"Every flag can also be set with the environment variable shown next to it.",
		Flags: a.flags(),
		Action: func(c *cli.Context) error {
			cfg, err := a.mountConfig(c)
			if err != nil {
				return usageError{err}
			}
			return act.mount(c.Context, cfg, mount.Env{Stdout: c.App.Writer, Stderr: c.App.ErrWriter})
		},
	}
}

// mountConfig completes the configuration the flags were bound to (the
// mapping file's settings under them, MOUNTPOINT, the on-change hook) and
// validates it.
func (a *mountArgs) mountConfig(c *cli.Context) (mount.Config, error) {
	var errs []error
	m, err := a.mappingFile(c)
	if err != nil {
		return a.cfg, err
	}
	cfg := a.cfg
	switch c.NArg() {
	case 0:
		if c.Command.Name == "check" {
			cfg.MountPoint = "-" // check mounts nothing
		}
	case 1:
		cfg.MountPoint = c.Args().First()
	default:
		errs = append(errs, fmt.Errorf("MOUNTPOINT: give one directory, got %d arguments (flags go before MOUNTPOINT)", c.NArg()))
	}
	if a.onChangeCommand != "" || a.onChange.Signal != "" || a.onChange.PIDFile != "" {
		h := a.onChange
		if a.onChangeCommand != "" {
			h.Command, h.Shell = []string{a.onChangeCommand}, true
		}
		cfg.Features.OnChange = &h
	}
	cfg.Mapping = m
	cfg.Version = buildVersion()
	if len(errs) == 0 {
		if err := cfg.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return cfg, errors.Join(errs...)
}

// demoCommand is "secretsfs demo".
func demoCommand(act actions) *cli.Command {
	dc := demoConfig{RotateEvery: 20 * time.Second, RefreshInterval: 5 * time.Second, LogLevel: mount.DefaultLogLevel}
	return &cli.Command{
		Name:      "demo",
		Usage:     "mount sample secrets from a built-in emulator (no AWS account needed)",
		ArgsUsage: "[MOUNTPOINT]",
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{fmt.Errorf("%w (see secretsfs demo --help)", err)}
		},
		Description: "Starts the Secrets Manager emulator in process on loopback with sample secrets,\n" +
			"mounts them on MOUNTPOINT (a new temporary directory by default), rotates demo/db\n" +
			"periodically and prints what to try. Ctrl-C unmounts and exits.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "rotate-interval", Value: dc.RotateEvery, Destination: &dc.RotateEvery, Usage: "how often demo/db is rotated"},
			&cli.DurationFlag{Name: "refresh-interval", Value: dc.RefreshInterval, Destination: &dc.RefreshInterval, Usage: "the daemon's refresh interval"},
			&cli.BoolFlag{Name: "kernel-cache", Destination: &dc.KernelCache, Usage: "use the fast, kernel-cached serving mode"},
			&cli.StringFlag{Name: "log-level", Value: dc.LogLevel, Destination: &dc.LogLevel, Usage: "debug, info, warn or error"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usageError{fmt.Errorf("MOUNTPOINT: give at most one directory, got %d arguments", c.NArg())}
			}
			dc.MountPoint, dc.Version = c.Args().First(), buildVersion()
			for _, f := range c.Command.Flags {
				if d, ok := f.(*cli.DurationFlag); ok && *d.Destination < mount.MinRefreshInterval {
					return usageError{fmt.Errorf("--%s: is %v; give at least %v, such as 5s", d.Name, *d.Destination, mount.MinRefreshInterval)}
				}
			}
			if _, err := mount.ParseLevel(dc.LogLevel); err != nil {
				return usageError{fmt.Errorf("--log-level: %w", err)}
			}
			return act.demo(c.Context, dc, c.App.Writer, c.App.ErrWriter)
		},
	}
}

// demoConfig configures "secretsfs demo".
type demoConfig struct {
	// MountPoint is where to mount; empty means a new temporary directory,
	// removed on exit.
	MountPoint string
	// RotateEvery is how often emulator.DemoSecret is rotated.
	RotateEvery time.Duration
	// RefreshInterval is the daemon's refresh interval, short so that
	// rotations show quickly.
	RefreshInterval time.Duration
	// KernelCache selects the fast, kernel-cached serving mode.
	KernelCache bool
	LogLevel    string
	Version     string
}

// demoRunner runs the demo: the daemon against the emulator, started in
// process on loopback with sample secrets.
type demoRunner struct {
	daemon func(ctx context.Context, cfg mount.Config, env mount.Env) error // mount.Run
	clock  cache.Clock                                                      // times the rotations
}

// run serves the demo until ctx ends. It rotates emulator.DemoSecret every
// dc.RotateEvery and prints what to try once the mount serves. It needs no
// AWS account, reads none of the user's AWS settings and changes no
// environment variable.
func (r demoRunner) run(ctx context.Context, dc demoConfig, stdout, stderr io.Writer) error {
	emu := emulator.New()
	if err := emulator.SeedDemo(emu); err != nil {
		return fmt.Errorf("demo: seed the emulator: %w", err)
	}
	srv, err := emulator.Start(emu, emulator.DefaultListen)
	if err != nil {
		return fmt.Errorf("demo: start the emulator: %w", err)
	}
	defer srv.Close()

	dir := dc.MountPoint
	if dir == "" {
		if dir, err = os.MkdirTemp("", "secretsfs-demo-"); err != nil {
			return fmt.Errorf("demo: make a mount point: %w", err)
		}
		defer os.Remove(dir) // empty again once unmounted
	}

	cfg := mount.DefaultConfig()
	cfg.MountPoint = dir
	cfg.RefreshInterval = dc.RefreshInterval
	cfg.ListInterval = max(dc.RefreshInterval, mount.MinListInterval)
	cfg.RetryDelayMax = 5 * time.Second
	cfg.Region = emu.Region()
	cfg.EndpointURL = srv.URL()
	cfg.KernelCache = dc.KernelCache
	cfg.Version = dc.Version
	if dc.LogLevel != "" {
		cfg.LogLevel = dc.LogLevel
	}

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	env := mount.Env{
		Stdout: stdout,
		Stderr: stderr,
		OnServing: func() {
			emulator.WriteDemoTips(stdout, dir, srv.URL(), dc.RotateEvery)
			wg.Go(func() { rotateDemo(rctx, emu, r.clock, dc.RotateEvery, stdout) })
		},
		// A fake key and none of the user's AWS settings: the emulator only
		// checks that a request is signed.
		StaticKeyID:     "AKIDSECRETSFSDEMO",
		StaticSecretKey: "secretsfs-demo",
	}
	err = r.daemon(rctx, cfg, env)
	stop()
	return err
}

// rotateDemo rotates emulator.DemoSecret every d on clock until ctx ends.
func rotateDemo(ctx context.Context, emu *emulator.Emulator, clock cache.Clock, d time.Duration, stdout io.Writer) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-clock.Alarm(clock.Now().Add(d)):
		}
		vid, err := emu.RotateSecret(emulator.DemoSecret)
		if err != nil {
			fmt.Fprintf(stdout, "demo: rotating %s failed: %v\n", emulator.DemoSecret, err)
			continue
		}
		fmt.Fprintf(stdout, "demo: rotated %s to version %s (new password); the files follow within seconds\n", emulator.DemoSecret, vid)
	}
}

// mappingFile loads the --config file, if any, and gives its settings to
// the flags that the command line and the environment did not set: a flag
// wins over the file. A setting is a flag's name with "_" for "-".
func (a *mountArgs) mappingFile(c *cli.Context) (*mapping.Config, error) {
	if a.config == "" {
		return nil, nil
	}
	m, err := mapping.Load(a.config)
	if err != nil {
		return nil, err
	}
	flags := map[string]cli.Flag{}
	var names []string
	for _, f := range c.Command.Flags {
		if n := f.Names()[0]; n != "config" {
			flags[n] = f
			names = append(names, strings.ReplaceAll(n, "-", "_"))
		}
	}
	var errs []error
	for _, s := range m.Settings {
		f, ok := flags[s.Flag]
		switch {
		case !ok:
			errs = append(errs, m.SettingError(s, "unknown setting; give files:, objects:, on_change: or a mount flag with _ for -: %s", strings.Join(names, ", ")))
			continue
		case c.IsSet(s.Flag):
			continue // given on the command line or in the environment
		}
		if !isList(f) && len(s.Values) != 1 {
			errs = append(errs, m.SettingError(s, "takes one value, got %d", len(s.Values)))
			continue
		}
		for _, v := range s.Values {
			if err := c.Set(s.Flag, v); err != nil {
				errs = append(errs, m.SettingError(s, "%q is not a valid value (%v)", v, err))
			}
		}
	}
	return m, errors.Join(errs...)
}

// checkCommand is "secretsfs check".
func checkCommand(act actions) *cli.Command {
	a := newMountArgs()
	return &cli.Command{
		Name:  "check",
		Usage: "check a mapping file and every secret it names, and show what would be mounted",
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{fmt.Errorf("%w (see secretsfs check --help)", err)}
		},
		Description: "Reads --config FILE and every secret it names through Secrets Manager, renders\n" +
			"every file (secrets, stages, versions and keys exist and are readable, templates\n" +
			"render) and prints a table of what would be mounted, without mounting and without\n" +
			"printing any value. Exits 1 naming each file that would fail with its line in\n" +
			"FILE, and 2, as mount does, when FILE itself has problems (each named with its\n" +
			"line) or for a bad flag. Takes the flags of mount.",
		Flags: a.flags(),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("check takes no arguments, got %q", c.Args().First())}
			}
			if a.config == "" {
				return usageError{errors.New("--config: give the mapping file to check, e.g. secretsfs check --config /etc/secretsfs.yaml")}
			}
			cfg, err := a.mountConfig(c) // a problem of the file itself: exit 2, as mount
			if err != nil {
				return usageError{err}
			}
			return act.check(c.Context, cfg, c.App.Writer)
		},
	}
}

// csiCommand is "secretsfs csi".
func csiCommand(act actions) *cli.Command {
	cfg := csi.DefaultConfig()
	return &cli.Command{
		Name:      "csi",
		Usage:     "serve the Kubernetes CSI node driver: each pod's inline volume a secretsfs mount under the pod's own identity",
		ArgsUsage: " ",
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{fmt.Errorf("%w (see secretsfs csi --help)", err)}
		},
		Description: "Serves the CSI Identity and Node services of driver " + csi.DriverName + " on the unix socket\n" +
			"--endpoint until SIGINT or SIGTERM, then exits leaving the volumes mounted: the\n" +
			"next driver process mounts over them when kubelet publishes them again, and the\n" +
			"pods' containers see its mounts. kubelet publishes\n" +
			"each pod's ephemeral inline volume; its attributes say which secrets it shows, and\n" +
			"the pod's service-account token whom they are read as: with roleArn through\n" +
			"AssumeRoleWithWebIdentity (IRSA), without through the EKS Pod Identity agent.\n" +
			"The driver's own AWS credentials are never used. Runs in the node DaemonSet.",
		Flags: []cli.Flag{
			stringFlag("endpoint", &cfg.Endpoint, about{
				usage: "unix socket `URL` to serve on, e.g. unix:///csi/csi.sock"}),
			stringFlag("node-id", &cfg.NodeID, about{
				usage: "the node's `NAME` (spec.nodeName from the downward API)"}),
			stringFlag("region", &cfg.Region, about{cat: catAWS, defaultText: "none: each volume gives its region",
				usage: "AWS `REGION` of the volumes that give none"}),
			stringFlag("endpoint-url", &cfg.EndpointURL, about{cat: catAWS, defaultText: "the region's",
				usage: "Secrets Manager endpoint `URL` of every volume (a VPC endpoint)"}),
			stringFlag("sts-endpoint-url", &cfg.STSEndpointURL, about{cat: catAWS, defaultText: "the region's",
				usage: "STS endpoint `URL` for the volumes' AssumeRoleWithWebIdentity (IRSA)"}),
			stringFlag("pod-identity-agent-url", &cfg.PodIdentityAgentURL, about{cat: catAWS,
				usage: "the EKS Pod Identity agent's credentials endpoint `URL`, for the volumes without roleArn"}),
			stringFlag("log-level", &cfg.LogLevel, about{cat: catLogs,
				usage: "debug, info, warn or error"}),
			stringFlag("log-format", &cfg.LogFormat, about{cat: catLogs,
				usage: "text or json"}),
			boolFlag("no-mlock", &cfg.NoMlock, about{cat: catObserve,
				usage: "do not lock the driver's memory (mlockall); the volumes' secrets may then be swapped to disk"}),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("csi takes no arguments, got %q (flags go as --flag=value)", c.Args().First())}
			}
			cfg.Version = buildVersion()
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			return act.csi(c.Context, cfg, c.App.ErrWriter)
		},
	}
}
