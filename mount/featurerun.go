package mount

import (
	"io"
	"log/slog"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/hooks"
	"github.com/secretsfs/secretsfs/mount/telemetry"
)

// featureSet runs the Features of one daemon: it is built before the cache
// (whose observer it provides), attached to the cache and catalog before
// mounting (binding the metrics address), started once serving and stopped
// before unmounting.
type featureSet struct {
	cfg      Config
	dir      string
	clock    cache.Clock // times the hooks' debounce
	log      *slog.Logger
	metrics  *telemetry.Metrics // nil without --metrics-listen
	expiry   *staleExpiry       // nil without --max-stale
	audit    *telemetry.Audit   // nil without --audit-log
	health   *telemetry.Health
	server   *telemetry.Server
	stopHook func()
	c        *cache.Cache
	cat      sfs.Catalog
}

func newFeatureSet(cfg Config, dir string, clock cache.Clock, hyg hygieneOutcome, stderr io.Writer, log *slog.Logger) (*featureSet, error) {
	f := &featureSet{cfg: cfg, dir: dir, clock: clock, log: log}
	if cfg.MetricsListen != "" {
		f.metrics = telemetry.NewMetrics(hyg.memoryLocked)
	}
	if cfg.MaxStale > 0 {
		f.expiry = newStaleExpiry(cfg.MaxStale, clock)
	}
	a, err := telemetry.OpenAudit(cfg.AuditLog, dir, stderr, log.With("component", "audit"))
	if err != nil {
		return nil, err
	}
	f.audit = a
	return f, nil
}

// cacheObserver is the cache's observer: the metrics and the --max-stale
// expiry, nil without either.
func (f *featureSet) cacheObserver() cache.Observer {
	var obs observers
	if f.metrics != nil {
		obs = append(obs, f.metrics.CacheObserver())
	}
	if f.expiry != nil {
		obs = append(obs, f.expiry)
	}
	switch len(obs) {
	case 0:
		return nil
	case 1:
		return obs[0]
	}
	return obs
}

// observers passes every observation on to each of them.
type observers []cache.Observer

func (o observers) APICall(op string, err error, took time.Duration) {
	for _, x := range o {
		x.APICall(op, err, took)
	}
}

func (o observers) Refresh(secretID string, err error, took time.Duration) {
	for _, x := range o {
		x.Refresh(secretID, err, took)
	}
}

// attach connects the features to the cache and the catalog and binds the
// metrics address.
func (f *featureSet) attach(c *cache.Cache, cat sfs.Catalog) error {
	f.c, f.cat = c, cat
	f.health = telemetry.NewHealth(c, f.cfg.MaxStale, f.clock)
	if f.metrics == nil {
		return nil
	}
	f.metrics.Watch(telemetry.Source{Cache: c, Served: func() int { return len(cat.List()) }}, f.health)
	srv, err := telemetry.Serve(f.cfg.MetricsListen, f.metrics, f.health, f.log.With("component", "metrics"))
	if err != nil {
		return err
	}
	f.server = srv
	return nil
}

// fsOptions sets the filesystem options the features need.
func (f *featureSet) fsOptions(o *sfs.Options) {
	st := store{c: f.c, maxStale: f.cfg.MaxStale, clock: f.clock, expiry: f.expiry}
	o.Store = st
	o.Refresher = st
	o.Observer = f.metrics.FSObserver() // a nil interface without --metrics-listen
	o.Auditor = f.audit.Auditor()       // a nil interface without --audit-log
}

// serving marks the mount healthy and starts the change hooks; files are
// the mapped files as mounted.
func (f *featureSet) serving(files []sfs.MappedFile) {
	f.health.SetMounted(true)
	var ran func(ok bool)
	if f.metrics != nil {
		ran = f.metrics.HookRan
	}
	f.stopHook = hooks.Start(hooks.Config{
		MountDir:     f.dir,
		DefaultStage: f.cfg.DefaultStage,
		Hook:         f.cfg.OnChange,
		Shown:        f.cat,
		Watches:      hooks.WatchesOf(f.cfg.Mapping, files, f.dir, f.cfg.DefaultStage),
		Source:       f.c,
		Clock:        f.clock,
		Logger:       f.log.With("component", "on_change"),
		Ran:          ran,
	})
}

// reopenLogs opens the audit log file again by its path (SIGHUP, after a
// log rotation).
func (f *featureSet) reopenLogs() {
	if f.audit == nil || f.cfg.AuditLog == "-" {
		return
	}
	if err := f.audit.Reopen(); err != nil {
		f.log.Error("SIGHUP: the audit log file could not be opened again; still writing to the old one", "error", err)
		return
	}
	f.log.Info("SIGHUP: audit log reopened", "file", f.cfg.AuditLog)
}

// stopping stops the change hooks and marks the mount unhealthy, before it
// is unmounted.
func (f *featureSet) stopping() {
	if f.health != nil {
		f.health.SetMounted(false)
	}
	if f.stopHook != nil {
		f.stopHook()
	}
}

// close releases the rest once unmounted.
func (f *featureSet) close() {
	if f.server != nil {
		f.server.Close()
	}
	f.audit.Close()
}
