package mount

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/catalog"
	"github.com/secretsfs/secretsfs/mount/hooks"
	"github.com/secretsfs/secretsfs/mount/telemetry"
)

// Daemon serves mounts from one process. Each mount is a mount point with
// its own options (a Config), served from a cache shared by every mount of
// the same identity (region, profile, endpoint, role and cache settings);
// the last mount of an identity closes its cache. Mounts are added and
// removed at any time without touching the others. `secretsfs mount` is a
// Daemon with one mount (Run).
type Daemon struct {
	env  Env
	deps runDeps
	log  *slog.Logger
	hyg  hygieneOutcome
	pool *cachePool
	// table tells every mount made as root when its mount point is
	// unmounted from outside: one watch of the mount table for all.
	table *sfs.MountTable
}

// NewDaemon returns a Daemon logging to log, whose mounts reach AWS as env
// says (env's static key, when set, signs every call of every mount).
func NewDaemon(env Env, log *slog.Logger) *Daemon {
	d := systemDeps()
	if env.Clock != nil {
		d.clock = env.Clock
	}
	return newDaemon(env, d, log, hygieneOutcome{})
}

// Caches returns the caches in use: one per identity (and cache settings)
// that a mount serves.
func (d *Daemon) Caches() []*cache.Cache { return d.pool.caches() }

func newDaemon(env Env, d runDeps, log *slog.Logger, hyg hygieneOutcome) *Daemon {
	return &Daemon{env: env.withDefaults(), deps: d, log: log, hyg: hyg, pool: newCachePool(),
		table: sfs.NewMountTable(log.With("component", "fs"))}
}

// Mount is one mount point served by a Daemon.
type Mount struct {
	// Dir is the absolute mount point.
	Dir string

	cfg   Config
	log   *slog.Logger
	cache *cache.Cache
	srv   mountedFS
	// real is Dir with its symbolic links resolved, and dev the mount's
	// MAJ:MIN there ("" when mountinfo did not show it): whether the mount
	// on top of Dir is still this one.
	real, dev string
	audit     *telemetry.Audit // nil without --audit-log
	served    int              // the secrets shown when it started serving

	mu      sync.Mutex
	closers []func() // undo Add, run last first
}

// onClose adds a step to undo when the mount goes.
func (m *Mount) onClose(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closers = append(m.closers, f)
}

// close undoes Add in reverse order, once.
func (m *Mount) close() {
	m.mu.Lock()
	fs := m.closers
	m.closers = nil
	m.mu.Unlock()
	for _, f := range slices.Backward(fs) {
		f()
	}
}

// Add validates cfg (its log and memory settings are the Daemon's and are
// ignored here) and serves a new mount: telemetry, the identity's cache, the
// catalog, the store, the mapped files, the mount, then the hooks, each
// built once and handed to the next. It prints the "serving" line on the
// Daemon's stdout. ctx bounds the setup only: the mount serves until
// Unmount.
func (d *Daemon) Add(ctx context.Context, cfg Config) (_ *Mount, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log, clock := d.log, d.deps.clock
	dir, err := filepath.Abs(cfg.MountPoint)
	if err != nil {
		return nil, fmt.Errorf("mount point %s: %w", cfg.MountPoint, err)
	}
	if _, err := d.deps.mountPoint.prepare(ctx, dir, cfg.Handover, log); err != nil {
		return nil, err
	}
	m := &Mount{Dir: dir, cfg: cfg, log: log}
	defer func() {
		if err != nil {
			m.close()
		}
	}()

	// Telemetry: metrics, the --max-stale expiry and the audit log.
	var metrics *telemetry.Metrics // nil without --metrics-listen
	if cfg.MetricsListen != "" {
		metrics = telemetry.NewMetrics(d.hyg.memoryLocked)
	}
	var expiry *staleExpiry // nil without --max-stale
	if cfg.MaxStale > 0 {
		expiry = newStaleExpiry(cfg.MaxStale, clock)
	}
	audit, err := telemetry.OpenAudit(cfg.AuditLog, dir, d.env.Stderr, log.With("component", "audit"))
	if err != nil {
		return nil, err
	}
	m.audit = audit
	m.onClose(func() { audit.Close() })

	// The cache, shared with the other mounts of the same identity.
	sh, release, err := d.pool.acquire(ctx, cfg, d.env, clock, log)
	if err != nil {
		return nil, err
	}
	m.onClose(release)
	c := sh.cache
	m.cache = c
	if metrics != nil {
		m.onClose(sh.obs.add(metrics.CacheObserver()))
	}
	if expiry != nil {
		m.onClose(sh.obs.add(expiry))
	}

	// The catalog: which secrets the mount shows. Its background listing
	// lives as long as the mount, not as long as ctx.
	life, endLife := context.WithCancel(context.WithoutCancel(ctx))
	m.onClose(endLife)
	defer context.AfterFunc(ctx, endLife)() // ctx ending during Add ends it
	catOpts := catalog.DefaultOptions(cfg.ListInterval, clock, log.With("component", "catalog"))
	if ids := watchedIDs(cfg); len(ids) > 0 {
		// First, so that the explicit catalog resolves names from what it
		// listed, without DescribeSecret. Shared by the identity's mounts
		// that name the same secrets.
		release, err := d.pool.watch(ctx, sh, ids, cfg.RefreshInterval, catOpts)
		if err != nil {
			return nil, err
		}
		m.onClose(release)
	}
	cat := catalogOf(cfg, c, catOpts)
	if err := cat.Start(life); err != nil {
		return nil, ctx.Err() // ctx ended before anything was mounted
	}
	m.onClose(cat.Stop)

	health := telemetry.NewHealth(c, cfg.MaxStale, clock)
	if metrics != nil {
		metrics.Watch(telemetry.Source{Cache: c, Served: cat.Len}, health)
		srv, err := telemetry.Serve(cfg.MetricsListen, metrics, health, log.With("component", "metrics"))
		if err != nil {
			return nil, err
		}
		m.onClose(srv.Close)
	}

	// The store, the mapped files, the mount.
	st := store{c: c, maxStale: cfg.MaxStale, clock: clock, expiry: expiry}
	fsOpts := sfs.Options{
		Store:        st,
		Refresher:    st,
		Catalog:      cat,
		Clock:        clock,
		DefaultStage: cfg.DefaultStage,
		UID:          cfg.UID,
		GID:          cfg.GID,
		FileMode:     cfg.FileMode,
		DirMode:      cfg.DirMode,
		AllowOther:   cfg.AllowOther,
		KernelCache:  cfg.KernelCache,
		FsName:       cfg.FsName,
		Observer:     metrics.FSObserver(), // a nil interface without --metrics-listen
		Auditor:      audit.Auditor(),      // a nil interface without --audit-log
		Logger:       log.With("component", "fs"),
		MountTable:   d.table,
	}
	if cfg.Mapping != nil {
		fsOpts.Files = mappedFiles(cfg.Mapping, st, cfg)
	}
	// The mount point's real path, resolved before mounting: resolving it
	// afterwards would ask the new mount for its root's attributes, which
	// the kernel would then answer from its cache even once the daemon is
	// gone, instead of ENOTCONN.
	m.real = dir
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		m.real = real
	}
	srv, err := d.deps.mount(dir, fsOpts)
	if err != nil {
		return nil, fmt.Errorf("mount on %s: %w", dir, err)
	}
	m.srv = srv
	if top, ok := d.deps.mountPoint.top(m.real); ok {
		m.dev = top.dev
	}
	m.onClose(func() { m.unmount(d.deps.mountPoint) })
	mode := "per-open"
	if cfg.KernelCache {
		mode = "kernel-cache"
	}
	m.served = servedSecrets(cat.List(), cfg.Mapping)
	fmt.Fprintf(d.env.Stdout, "secretsfs: serving %d secrets at %s (%s mode)\n", m.served, dir, mode)
	log.Info("serving", "mountpoint", dir, "secrets", m.served, "mapped_files", len(fsOpts.Files), "mode", mode, "explicit", cfg.ExplicitMode())

	// Serving: healthy, and the change hooks run.
	health.SetMounted(true)
	var ran func(ok bool)
	if metrics != nil {
		ran = metrics.HookRan
	}
	stopHooks := hooks.Start(hooks.Config{
		MountDir:     dir,
		DefaultStage: cfg.DefaultStage,
		Hook:         cfg.OnChange,
		Shown:        cat,
		Watches:      hooks.WatchesOf(cfg.Mapping, fsOpts.Files, dir, cfg.DefaultStage),
		Source:       c,
		Clock:        clock,
		Logger:       log.With("component", "on_change"),
		Ran:          ran,
	})
	m.onClose(func() {
		health.SetMounted(false)
		stopHooks()
	})
	return m, nil
}

// Gone is closed when the mount stops serving without Unmount: someone ran
// umount on it.
func (m *Mount) Gone() <-chan struct{} { return m.srv.Gone() }

// Unmount stops the hooks, unmounts (lazily while files are open; not at all
// when it was unmounted from outside), then releases the catalog, the
// metrics server, the cache (closed with its identity's last mount) and the
// audit log: Add undone in reverse order.
func (m *Mount) Unmount() { m.close() }

// unmount unmounts the filesystem unless someone already did; when files
// are still open it detaches the mount lazily instead, so that the mount
// point is free at once and the connection ends with the process.
func (m *Mount) unmount(mp mountPoint) {
	select {
	case <-m.srv.Gone():
		return // unmounted from outside
	default:
	}
	if top, ok := mp.top(m.real); m.dev != "" && (!ok || top.dev != m.dev) {
		// Another process detached this mount and mounted its own there
		// (a CSI driver taking its volumes over): what unmounting Dir
		// would remove is that one. This mount ends with its last user.
		m.log.Warn("the mount point no longer holds this mount; leaving what is mounted there", "mountpoint", m.Dir)
		return
	}
	unmount(m.srv, m.Dir, mp, m.log)
}

// reopenAudit opens the audit log file again by its path (SIGHUP, after a
// log rotation).
func (m *Mount) reopenAudit() {
	if m.audit == nil || m.cfg.AuditLog == "-" {
		return
	}
	if err := m.audit.Reopen(); err != nil {
		m.log.Error("SIGHUP: the audit log file could not be opened again; still writing to the old one", "error", err)
		return
	}
	m.log.Info("SIGHUP: audit log reopened", "file", m.cfg.AuditLog)
}
