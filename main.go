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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/mount"
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
}

// defaultActions returns the real implementations.
func defaultActions() actions {
	return actions{
		emulator: runEmulator,
		mount:    mount.Run,
		demo:     demoRunner{daemon: mount.Run, clock: cache.SystemClock()}.run,
		check:    mount.Check,
		fstab:    runFstabHelper,
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
				Name:    "listen",
				Value:   defaultEmulatorListen,
				EnvVars: []string{"SECRETSFS_EMULATOR_LISTEN"},
				Usage:   "`HOST:PORT` to listen on; port 0 picks a free one. A non-loopback address exposes every secret without authentication. Only requests whose Host header is a loopback name or HOST are answered (any, for 0.0.0.0 or ::)",
			},
			&cli.StringFlag{
				Name:      "seed",
				EnvVars:   []string{"SECRETSFS_EMULATOR_SEED"},
				Usage:     "JSON `FILE` of secrets to preload (format: see the README)",
				TakesFile: true,
			},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("emulator takes no arguments, got %q", c.Args().First())}
			}
			listen := c.String("listen")
			if _, _, err := net.SplitHostPort(listen); err != nil {
				return usageError{fmt.Errorf("--listen %q: want HOST:PORT, e.g. 127.0.0.1:9765 (%v)", listen, err)}
			}
			seed := c.String("seed")
			if seed != "" {
				if _, err := os.Stat(seed); err != nil {
					return usageError{fmt.Errorf("--seed: %w", err)}
				}
			}
			return act.emulator(c.Context, emulator.CommandConfig{Listen: listen, SeedFile: seed}, c.App.Writer, c.App.ErrWriter)
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

// mountFlags are the flags of "secretsfs mount", with the defaults of
// mount.DefaultConfig.
func mountFlags() []cli.Flag {
	d := mount.DefaultConfig()
	return []cli.Flag{
		&cli.DurationFlag{Name: "refresh-interval", Category: catCache, Value: d.RefreshInterval, EnvVars: envVar("refresh-interval"),
			Usage: fmt.Sprintf("how long a secret's metadata is trusted before it is asked for again (at least %v); shorter shows rotations sooner and costs more DescribeSecret calls", mount.MinRefreshInterval)},
		&cli.IntFlag{Name: "max-cache-size", Category: catCache, Value: d.MaxCacheSize, EnvVars: envVar("max-cache-size"),
			Usage: "how many secrets the cache keeps"},
		&cli.DurationFlag{Name: "retry-delay-base", Category: catCache, Value: d.RetryDelayBase, EnvVars: envVar("retry-delay-base"),
			Usage: fmt.Sprintf("wait after a secret's first failed refresh (at least %v)", mount.MinRetryDelayBase)},
		&cli.Float64Flag{Name: "retry-growth-factor", Category: catCache, Value: d.RetryGrowthFactor, EnvVars: envVar("retry-growth-factor"),
			Usage: "factor the wait grows by after each further failure (at least 1)"},
		&cli.DurationFlag{Name: "retry-delay-max", Category: catCache, Value: d.RetryDelayMax, EnvVars: envVar("retry-delay-max"),
			Usage: fmt.Sprintf("longest wait between retries (at least %v)", mount.MinRetryDelayMax)},
		&cli.StringFlag{Name: "default-stage", Category: catCache, Value: d.DefaultStage, EnvVars: envVar("default-stage"),
			Usage: "`STAGE` whose value a JSON secret's key files show"},

		&cli.StringFlag{Name: "region", Category: catAWS, EnvVars: envVar("region"),
			Usage: "AWS `REGION` (default: the SDK's, e.g. AWS_REGION)"},
		&cli.StringFlag{Name: "profile", Category: catAWS, EnvVars: envVar("profile"),
			Usage: "shared configuration `PROFILE` (default: the SDK's, e.g. AWS_PROFILE)"},
		&cli.StringFlag{Name: "endpoint-url", Category: catAWS, EnvVars: envVar("endpoint-url"),
			Usage: "Secrets Manager endpoint `URL` (default: the SDK's; AWS_ENDPOINT_URL_SECRETS_MANAGER is honoured)"},
		&cli.StringFlag{Name: "role-arn", Category: catAWS, EnvVars: envVar("role-arn"),
			Usage: "IAM role `ARN` to assume through STS for every call"},

		&cli.UintFlag{Name: "uid", Category: catFiles, Value: uint(d.UID), EnvVars: envVar("uid"), DefaultText: "the mounting user",
			Usage: "numeric owner of every file and directory"},
		&cli.UintFlag{Name: "gid", Category: catFiles, Value: uint(d.GID), EnvVars: envVar("gid"), DefaultText: "the mounting user's",
			Usage: "numeric group of every file and directory"},
		&cli.StringFlag{Name: "file-mode", Category: catFiles, Value: fmt.Sprintf("%04o", uint32(d.FileMode)), EnvVars: envVar("file-mode"),
			Usage: "permission of secret files, in `OCTAL`"},
		&cli.StringFlag{Name: "dir-mode", Category: catFiles, Value: fmt.Sprintf("%04o", uint32(d.DirMode)), EnvVars: envVar("dir-mode"),
			Usage: "permission of directories, in `OCTAL`"},
		&cli.BoolFlag{Name: "allow-other", Category: catFiles, EnvVars: envVar("allow-other"),
			Usage: "let other users into the mount; the kernel then enforces the modes (as non-root: user_allow_other in /etc/fuse.conf)"},
		&cli.StringFlag{Name: "fsname", Category: catFiles, Value: d.FsName, EnvVars: envVar("fsname"),
			Usage: "the filesystem's `NAME` (source) in /proc/mounts; the fstab helper gives the entry's first field, by which mount -a knows the entry is mounted"},
		&cli.BoolFlag{Name: "kernel-cache", Category: catFiles, EnvVars: envVar("kernel-cache"),
			Usage: "fast mode: reads are served from the kernel's page cache until a version changes (no per-open snapshot or audit)"},

		&cli.StringSliceFlag{Name: "prefix", Category: catListing, EnvVars: envVar("prefix"),
			Usage: "show only secrets whose names start with `PREFIX` (repeatable; comma-separated in the variable)"},
		&cli.StringSliceFlag{Name: "tag", Category: catListing, EnvVars: envVar("tag"),
			Usage: "show only secrets carrying tag `KEY=VALUE` (repeatable, all must match; comma-separated in the variable)"},
		&cli.DurationFlag{Name: "list-interval", Category: catListing, Value: d.ListInterval, EnvVars: envVar("list-interval"),
			Usage: fmt.Sprintf("how often the secrets are listed again (at least %v)", mount.MinListInterval)},
		&cli.StringSliceFlag{Name: "secret", Category: catListing, EnvVars: envVar("secret"),
			Usage: "show only this secret, by name or ARN `ID` (repeatable); no ListSecrets permission needed"},

		&cli.StringFlag{Name: "log-level", Category: catLogs, Value: d.LogLevel, EnvVars: envVar("log-level"),
			Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Category: catLogs, Value: d.LogFormat, EnvVars: envVar("log-format"),
			Usage: "text or json"},
		&cli.StringFlag{Name: "log-file", Category: catLogs, EnvVars: envVar("log-file"), TakesFile: true, DefaultText: "stderr",
			Usage: "append the log to `FILE` (created with mode 0600; reopened on SIGHUP and after a rotation)"},
		&cli.BoolFlag{Name: "syslog", Category: catLogs, EnvVars: envVar("syslog"),
			Usage: "send the log to the system log (the journal under systemd); stderr where there is none"},

		&cli.StringFlag{Name: "config", Category: catMapping, EnvVars: envVar("config"), TakesFile: true,
			Usage: "mapping `FILE` (YAML): files at chosen paths, formats, templates, settings; the mount then shows only those files"},
		&cli.BoolFlag{Name: "expose-all", Category: catMapping, EnvVars: envVar("expose-all"),
			Usage: "with --config, also show the default layout beside the mapped files"},

		&cli.StringFlag{Name: "on-change-command", Category: catChange, EnvVars: envVar("on-change-command"),
			Usage: "`COMMAND` run with /bin/sh -c when files' content changes, once per burst; SECRETSFS_PATHS names the files"},
		&cli.StringFlag{Name: "on-change-signal", Category: catChange, EnvVars: envVar("on-change-signal"),
			Usage: "`SIGNAL` (e.g. HUP) sent to the pid in --on-change-pidfile when a file's content changes"},
		&cli.StringFlag{Name: "on-change-pidfile", Category: catChange, EnvVars: envVar("on-change-pidfile"), TakesFile: true,
			Usage: "`FILE` holding the pid that --on-change-signal goes to"},
		&cli.DurationFlag{Name: "on-change-debounce", Category: catChange, Value: mount.DefaultDebounce, EnvVars: envVar("on-change-debounce"),
			Usage: "how long the files must stay unchanged before the on-change hook runs, once for all of them"},
		&cli.DurationFlag{Name: "max-stale", Category: catChange, EnvVars: envVar("max-stale"), DefaultText: "no bound",
			Usage: "while refreshes fail, serve a cached value at most this long after its last successful refresh, then EIO"},

		&cli.StringFlag{Name: "metrics-listen", Category: catObserve, EnvVars: envVar("metrics-listen"),
			Usage: "serve Prometheus /metrics and /healthz on `HOST:PORT` (loopback only unless --metrics-allow-remote)"},
		&cli.BoolFlag{Name: "metrics-allow-remote", Category: catObserve, EnvVars: envVar("metrics-allow-remote"),
			Usage: "allow a --metrics-listen address other than loopback"},
		&cli.StringFlag{Name: "audit-log", Category: catObserve, EnvVars: envVar("audit-log"), TakesFile: true,
			Usage: "append one JSON line per open of a secret file to `FILE` (- for stderr); needs the per-open mode"},
		&cli.BoolFlag{Name: "no-mlock", Category: catObserve, EnvVars: envVar("no-mlock"),
			Usage: "do not lock the daemon's memory (mlockall); secrets may then be swapped to disk"},
	}
}

// mountCommand is "secretsfs mount".
func mountCommand(act actions) *cli.Command {
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
		Flags: mountFlags(),
		Action: func(c *cli.Context) error {
			cfg, err := mountConfig(c)
			if err != nil {
				return usageError{err}
			}
			return act.mount(c.Context, cfg, mount.Env{Stdout: c.App.Writer, Stderr: c.App.ErrWriter})
		},
	}
}

// mountConfig turns the parsed flags into a validated mount.Config.
func mountConfig(c *cli.Context) (mount.Config, error) {
	cfg := mount.DefaultConfig()
	var errs []error
	m, err := mappingFile(c)
	if err != nil {
		return cfg, err
	}
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
	cfg.RefreshInterval = c.Duration("refresh-interval")
	cfg.MaxCacheSize = c.Int("max-cache-size")
	cfg.RetryDelayBase = c.Duration("retry-delay-base")
	cfg.RetryGrowthFactor = c.Float64("retry-growth-factor")
	cfg.RetryDelayMax = c.Duration("retry-delay-max")
	cfg.DefaultStage = c.String("default-stage")
	cfg.Region = c.String("region")
	cfg.Profile = c.String("profile")
	cfg.EndpointURL = c.String("endpoint-url")
	cfg.RoleARN = c.String("role-arn")
	for _, id := range []string{"uid", "gid"} {
		if v := c.Uint(id); uint64(v) > uint64(^uint32(0)) {
			errs = append(errs, fmt.Errorf("--%s: %d is too large; give a numeric id below 2^32", id, v))
		}
	}
	cfg.UID = uint32(c.Uint("uid"))
	cfg.GID = uint32(c.Uint("gid"))
	if m, err := mount.ParseMode(c.String("file-mode")); err != nil {
		errs = append(errs, fmt.Errorf("--file-mode: %w", err))
	} else {
		cfg.FileMode = m
	}
	if m, err := mount.ParseMode(c.String("dir-mode")); err != nil {
		errs = append(errs, fmt.Errorf("--dir-mode: %w", err))
	} else {
		cfg.DirMode = m
	}
	cfg.AllowOther = c.Bool("allow-other")
	cfg.KernelCache = c.Bool("kernel-cache")
	cfg.FsName = c.String("fsname")
	cfg.Prefixes = c.StringSlice("prefix")
	for _, s := range c.StringSlice("tag") {
		t, err := mount.ParseTag(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--tag: %w", err))
			continue
		}
		cfg.Tags = append(cfg.Tags, t)
	}
	cfg.ListInterval = c.Duration("list-interval")
	cfg.Secrets = c.StringSlice("secret")
	cfg.LogLevel = c.String("log-level")
	cfg.LogFormat = c.String("log-format")
	cfg.LogFile = c.String("log-file")
	cfg.Syslog = c.Bool("syslog")
	cfg.Features = mountFeatures(c)
	cfg.Mapping = m
	cfg.ExposeAll = c.Bool("expose-all")
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
			&cli.DurationFlag{Name: "rotate-interval", Value: 20 * time.Second, Usage: "how often demo/db is rotated"},
			&cli.DurationFlag{Name: "refresh-interval", Value: 5 * time.Second, Usage: "the daemon's refresh interval"},
			&cli.BoolFlag{Name: "kernel-cache", Usage: "use the fast, kernel-cached serving mode"},
			&cli.StringFlag{Name: "log-level", Value: mount.DefaultLogLevel, Usage: "debug, info, warn or error"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return usageError{fmt.Errorf("MOUNTPOINT: give at most one directory, got %d arguments", c.NArg())}
			}
			dc := demoConfig{
				MountPoint:      c.Args().First(),
				RotateEvery:     c.Duration("rotate-interval"),
				RefreshInterval: c.Duration("refresh-interval"),
				KernelCache:     c.Bool("kernel-cache"),
				LogLevel:        c.String("log-level"),
				Version:         buildVersion(),
			}
			for _, f := range []string{"rotate-interval", "refresh-interval"} {
				if c.Duration(f) < mount.MinRefreshInterval {
					return usageError{fmt.Errorf("--%s: is %v; give at least %v, such as 5s", f, c.Duration(f), mount.MinRefreshInterval)}
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

// mountFeatures reads the flags of change hooks, metrics, audit and memory
// hygiene; Validate checks them.
func mountFeatures(c *cli.Context) mount.Features {
	f := mount.Features{
		MaxStale:           c.Duration("max-stale"),
		MetricsListen:      c.String("metrics-listen"),
		MetricsAllowRemote: c.Bool("metrics-allow-remote"),
		AuditLog:           c.String("audit-log"),
		NoMlock:            c.Bool("no-mlock"),
	}
	cmd, sig, pidFile := c.String("on-change-command"), c.String("on-change-signal"), c.String("on-change-pidfile")
	if cmd != "" || sig != "" || pidFile != "" {
		h := &mapping.OnChange{Signal: sig, PIDFile: pidFile, Debounce: c.Duration("on-change-debounce")}
		if cmd != "" {
			h.Command, h.Shell = []string{cmd}, true
		}
		f.OnChange = h
	}
	return f
}

// mappingFile loads the --config file, if any, and gives its settings to
// the flags that the command line and the environment did not set: a flag
// wins over the file. A setting is a flag's name with "_" for "-".
func mappingFile(c *cli.Context) (*mapping.Config, error) {
	path := c.String("config")
	if path == "" {
		return nil, nil
	}
	m, err := mapping.Load(path)
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
		if _, list := f.(*cli.StringSliceFlag); !list && len(s.Values) != 1 {
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
		Flags: mountFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError{fmt.Errorf("check takes no arguments, got %q", c.Args().First())}
			}
			if c.String("config") == "" {
				return usageError{errors.New("--config: give the mapping file to check, e.g. secretsfs check --config /etc/secretsfs.yaml")}
			}
			cfg, err := mountConfig(c) // a problem of the file itself: exit 2, as mount
			if err != nil {
				return usageError{err}
			}
			return act.check(c.Context, cfg, c.App.Writer)
		},
	}
}
