package mount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
)

// refreshConcurrency bounds the forced refreshes SIGHUP runs at once, and so
// the Secrets Manager calls of one sweep over every cached secret.
const refreshConcurrency = 8

// runDeps are what Run needs from the system, replaced in tests.
type runDeps struct {
	mountPoint mountPoint
	mount      func(dir string, opts sfs.Options) (mountedFS, error)
	// hup delivers SIGHUP; nil means Run subscribes to the real signal.
	hup   <-chan os.Signal
	clock cache.Clock
	// hygiene locks memory and disables core dumps; nil functions skip it.
	hygiene hygieneCalls
	// syslog connects to the system log for --syslog; nil means there is
	// none.
	syslog func() (syslogWriter, error)
	// gc sets the garbage collector's target; nil functions skip it.
	gc gcCalls
}

func systemDeps() runDeps {
	return runDeps{mountPoint: systemMountPoint(), mount: fuseMount, clock: cache.SystemClock(), hygiene: systemHygiene(), syslog: dialSyslog, gc: systemGC()}
}

// Run runs the daemon with one mount until ctx ends: it validates cfg and
// the mount point, clears a stale mount, builds the AWS client, the cache
// and the catalog (Daemon.Add), mounts, prints one line to stdout once serving, and unmounts when ctx ends
// (unless cfg.Handover), returning nil. SIGHUP forces a refresh of every cached secret and reopens
// the audit log and log files (after a log rotation). Logs go to
// env.Stderr, the --log-file or syslog; no secret value is ever logged.
func Run(ctx context.Context, cfg Config, env Env) error {
	return run(ctx, cfg, env, systemDeps())
}

func run(ctx context.Context, cfg Config, env Env, d runDeps) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	env = env.withDefaults()
	dl, err := openLog(cfg, env.Stderr, d.syslog)
	if err != nil {
		return err
	}
	defer dl.close()
	if !dl.toStderr() {
		// The caller prints the error on stderr; the log gets it too.
		defer func() {
			if err != nil {
				dl.Error("exiting", "err", err)
			}
		}()
	}
	log := dl.Logger
	var hyg hygieneOutcome
	if d.hygiene.mlockall != nil {
		hyg = applyHygiene(d.hygiene, cfg.NoMlock, log)
	}
	tuneGC(d.gc, log)
	hup := d.hup
	if hup == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGHUP)
		defer signal.Stop(ch)
		hup = ch
	}

	daemon := newDaemon(env, d, log, hyg)
	m, err := daemon.Add(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil // ctx ended before anything was mounted
		}
		return err
	}
	notifyServing(log, fmt.Sprintf("serving %d secrets at %s", m.served, m.Dir))
	if env.OnServing != nil {
		env.OnServing()
	}

	var refreshing atomic.Bool
	var wg sync.WaitGroup
	external := false
	for ctx.Err() == nil && !external {
		select {
		case <-ctx.Done():
		case <-m.Gone():
			log.Info("unmounted from outside (umount); exiting", "mountpoint", m.Dir)
			external = true
		case <-hup:
			dl.reopen()
			m.reopenAudit()
			if !refreshing.CompareAndSwap(false, true) {
				log.Info("SIGHUP: a forced refresh is already running")
				continue
			}
			wg.Go(func() {
				defer refreshing.Store(false)
				for _, c := range daemon.pool.caches() {
					refreshAll(ctx, c, log)
				}
			})
		}
	}
	notifyStopping(log)
	wg.Wait()
	if cfg.Handover && !external {
		// The process exits next, and the kernel ends the connection
		// with it.
		log.Info("leaving the mount point mounted for the next daemon (--handover); it answers ENOTCONN until then", "mountpoint", m.Dir)
		return nil
	}
	m.Unmount() // not again when unmounted from outside
	return nil
}

// refreshAll forces a refresh of every cached secret and logs how many
// succeeded.
func refreshAll(ctx context.Context, c *cache.Cache, log *slog.Logger) {
	// Secrets a listing holds that nobody read or pinned are left to the
	// next listing: refreshing them would fetch values nobody asked for.
	var ids []string
	for _, id := range c.SecretIDs() {
		if in, ok := c.Info(id); ok && (in.Read || in.Pinned) {
			ids = append(ids, id)
		}
	}
	log.Info("SIGHUP: refreshing every secret in use", "secrets", len(ids))
	var ok, failed atomic.Int64
	var g errgroup.Group
	g.SetLimit(refreshConcurrency)
	for _, id := range ids {
		g.Go(func() error {
			if err := c.RefreshNow(ctx, id); err != nil {
				failed.Add(1)
				log.Warn("forced refresh failed", "secret", id, "err", err)
				return nil // one failure stops no other refresh
			}
			ok.Add(1)
			return nil
		})
	}
	g.Wait()
	log.Info("SIGHUP: forced refresh done", "refreshed", ok.Load(), "failed", failed.Load())
}

// unmount unmounts the filesystem; when files are still open it detaches the
// mount lazily instead, so that the mount point is free at once and the
// connection ends with the process.
func unmount(srv mountedFS, dir string, mp mountPoint, log *slog.Logger) {
	err := srv.Unmount()
	if err == nil {
		srv.Wait()
		log.Info("unmounted", "mountpoint", dir)
		return
	}
	log.Warn("unmount failed, files are probably open; detaching the mount lazily", "mountpoint", dir, "err", err)
	if err := mp.detach(context.Background(), dir); err != nil {
		log.Error("could not detach the mount; run umount -l on it", "mountpoint", dir, "err", err)
		return
	}
	log.Info("detached", "mountpoint", dir)
}
