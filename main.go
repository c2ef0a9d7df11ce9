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
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=1.2.3"; when it
// is empty the module version or VCS revision recorded by the Go toolchain is
// used instead.
var version string

// actions are the functions the commands call once their flags are parsed.
type actions struct{}

// defaultActions returns the real implementations.
func defaultActions() actions {
	return actions{}
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
