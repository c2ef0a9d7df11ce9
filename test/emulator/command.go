package emulator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// CommandConfig is the configuration of the "secretsfs emulator" command.
type CommandConfig struct {
	// Listen is the host:port to serve on; DefaultListen when empty. A
	// port of 0 picks a free one (the printed URL tells which). Anything
	// but a loopback address exposes every secret to the network without
	// authentication, and is warned about.
	Listen string
	// SeedFile is a JSON seed file to preload (see SeedFile): secrets,
	// and an IAM model that turns on signature checks and permissions;
	// none when empty.
	SeedFile string
}

// shutdownGrace bounds how long the command waits for requests in flight
// when it is stopped.
const shutdownGrace = 5 * time.Second

// RunCommand runs the emulator as a command: it loads the seed file, starts
// a server, prints the endpoint URL as the first line of stdout once the
// port is bound, and serves until ctx is cancelled (SIGINT or SIGTERM in the
// real command). Errors name the seed file or the address at fault.
func RunCommand(ctx context.Context, cfg CommandConfig, stdout io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := New(WithLogger(log))
	if cfg.SeedFile != "" {
		f, err := LoadSeedFile(cfg.SeedFile)
		if err != nil {
			return err
		}
		if err := e.Seed(f); err != nil {
			return fmt.Errorf("seed file %s: %w", cfg.SeedFile, err)
		}
	}
	srv, err := Start(e, cfg.Listen)
	if err != nil {
		return err
	}
	if !isLoopback(srv.Addr()) {
		if e.IAMEnabled() {
			log.Warn("the emulator is reachable from the network", "addr", srv.Addr())
		} else {
			log.Warn("the emulator is reachable from the network and accepts any credentials", "addr", srv.Addr())
		}
	}
	if _, err := fmt.Fprintln(stdout, srv.URL()); err != nil {
		_ = srv.Close()
		return fmt.Errorf("print the endpoint URL: %w", err)
	}
	log.Info("Secrets Manager emulator ready; stop it with Ctrl-C",
		"endpoint", srv.URL(),
		"try", fmt.Sprintf("aws --endpoint-url %s secretsmanager list-secrets", srv.URL()),
		"secrets", e.numSecrets())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("stop the emulator: %w", err)
	}
	log.Info("Secrets Manager emulator stopped")
	return nil
}

// numSecrets returns how many secrets the emulator holds.
func (e *Emulator) numSecrets() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.secrets)
}

// isLoopback reports whether a bound host:port is on a loopback address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
