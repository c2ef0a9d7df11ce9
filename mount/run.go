package mount

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/catalog"
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
}

func systemDeps() runDeps {
	return runDeps{mountPoint: systemMountPoint(), mount: fuseMount, clock: cache.SystemClock(), hygiene: systemHygiene(), syslog: dialSyslog}
}

// Run runs the daemon until ctx ends: it validates cfg and the mount point,
// clears a stale mount, builds the AWS client, the cache and the catalog,
// mounts, prints one line to stdout once serving, and unmounts when ctx ends,
// returning nil. SIGHUP forces a refresh of every cached secret and reopens
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
	stdout, stderr := env.Stdout, env.Stderr
	dl, err := openLog(cfg, stderr, d.syslog)
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
	hup := d.hup
	if hup == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGHUP)
		defer signal.Stop(ch)
		hup = ch
	}

	dir, err := filepath.Abs(cfg.MountPoint)
	if err != nil {
		return fmt.Errorf("mount point %s: %w", cfg.MountPoint, err)
	}
	if _, err := d.mountPoint.prepare(ctx, dir, log); err != nil {
		return err
	}

	client, err := newSecretsClient(ctx, cfg, env)
	if err != nil {
		return err
	}
	feat, err := newFeatureSet(cfg, dir, d.clock, hyg, stderr, log)
	if err != nil {
		return err
	}
	defer feat.close()
	c, err := cache.New(client, cfg.Cache(d.clock, log.With("component", "cache"), feat.cacheObserver()))
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer c.Close()

	cat := catalogOf(cfg, cache.NewLister(client), c,
		catalog.DefaultOptions(cfg.ListInterval, d.clock, log.With("component", "catalog")))
	if err := cat.Start(ctx); err != nil {
		return nil // ctx ended before anything was mounted
	}
	defer cat.Stop()
	if err := feat.attach(c, cat); err != nil {
		return err
	}

	fsOpts := sfs.Options{
		Store:        store{c: c},
		Catalog:      cat,
		Clock:        d.clock,
		DefaultStage: cfg.DefaultStage,
		UID:          cfg.UID,
		GID:          cfg.GID,
		FileMode:     cfg.FileMode,
		DirMode:      cfg.DirMode,
		AllowOther:   cfg.AllowOther,
		KernelCache:  cfg.KernelCache,
		FsName:       cfg.FsName,
		Logger:       log.With("component", "fs"),
	}
	feat.fsOptions(&fsOpts)
	if cfg.Mapping != nil {
		st, _ := fsOpts.Store.(store)
		if st.c == nil {
			st = store{c: c}
		}
		fsOpts.Files = mappedFiles(cfg.Mapping, st, cfg)
	}
	srv, err := d.mount(dir, fsOpts)
	if err != nil {
		return fmt.Errorf("mount on %s: %w", dir, err)
	}
	mode := "per-open"
	if cfg.KernelCache {
		mode = "kernel-cache"
	}
	n := servedSecrets(cat.List(), cfg.Mapping)
	fmt.Fprintf(stdout, "secretsfs: serving %d secrets at %s (%s mode)\n", n, dir, mode)
	log.Info("serving", "mountpoint", dir, "secrets", n, "mapped_files", len(fsOpts.Files), "mode", mode, "explicit", cfg.ExplicitMode())
	notifyServing(log, fmt.Sprintf("serving %d secrets at %s", n, dir))
	feat.serving(fsOpts.Files)
	if env.OnServing != nil {
		env.OnServing()
	}

	var refreshing atomic.Bool
	var wg sync.WaitGroup
	gone := unmountedOutside(srv)
	external := false
	for ctx.Err() == nil && !external {
		select {
		case <-ctx.Done():
		case <-gone:
			log.Info("unmounted from outside (umount); exiting", "mountpoint", dir)
			external = true
		case <-hup:
			dl.reopen()
			feat.reopenLogs()
			if !refreshing.CompareAndSwap(false, true) {
				log.Info("SIGHUP: a forced refresh is already running")
				continue
			}
			wg.Go(func() {
				defer refreshing.Store(false)
				refreshAll(ctx, c, log)
			})
		}
	}
	notifyStopping(log)
	feat.stopping()
	wg.Wait()
	if !external {
		unmount(srv, dir, d.mountPoint, log)
	}
	return nil
}

// refreshAll forces a refresh of every cached secret and logs how many
// succeeded.
func refreshAll(ctx context.Context, c *cache.Cache, log *slog.Logger) {
	ids := c.SecretIDs()
	log.Info("SIGHUP: refreshing every cached secret", "secrets", len(ids))
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
