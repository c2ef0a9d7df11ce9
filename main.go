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
	"syscall"

	"github.com/secretsfs/secretsfs/mount"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/urfave/cli/v2"
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
	mount func(ctx context.Context, cfg mount.Config, stdout, stderr io.Writer) error
	// demo runs the daemon against the built-in emulator (mount.Demo).
	demo func(ctx context.Context, cfg mount.DemoConfig, stdout, stderr io.Writer) error
}

// defaultActions returns the real implementations.
func defaultActions() actions {
	return actions{emulator: runEmulator, mount: mount.Run, demo: mount.Demo}
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
				Usage:   "`HOST:PORT` to listen on; port 0 picks a free one. A non-loopback address exposes every secret without authentication",
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

// run is main without the process exit, for tests.
func run(ctx context.Context, act actions, args []string, stdout, stderr io.Writer) int {
	err := newApp(act, stdout, stderr).RunContext(ctx, args)
	if err != nil {
		fmt.Fprintf(stderr, "secretsfs: %v\n", err)
	}
	return exitCode(err)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, defaultActions(), os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
