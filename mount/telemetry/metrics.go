package telemetry

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
)

// Metrics are the daemon's Prometheus metrics, in a registry of their own.
// Labels carry operation names, outcomes and errno names, never a secret
// name or value.
type Metrics struct {
	reg        *prometheus.Registry
	apiCalls   *prometheus.CounterVec
	apiSeconds *prometheus.HistogramVec
	refreshes  *prometheus.HistogramVec
	fuseOps    *prometheus.CounterVec
	hookRuns   *prometheus.CounterVec

	opsMu sync.Mutex
	ops   map[opLabel]prometheus.Counter // resolved children; guarded by opsMu
}

type opLabel struct {
	op    string
	errno syscall.Errno
}

// NewMetrics builds the metrics; memoryLocked says whether the daemon's
// memory is locked (mlockall).
func NewMetrics(memoryLocked bool) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "secretsfs_api_calls_total",
			Help: "Secrets Manager calls, by operation and outcome (ok, not_found, access_denied, unavailable, error).",
		}, []string{"operation", "outcome"}),
		apiSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "secretsfs_api_call_duration_seconds",
			Help:    "Duration of Secrets Manager calls, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"operation"}),
		refreshes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "secretsfs_refresh_duration_seconds",
			Help:    "Duration of secret refreshes (DescribeSecret and the values it made necessary), by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"outcome"}),
		fuseOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "secretsfs_fuse_operations_total",
			Help: "FUSE requests answered, by operation and errno (OK for success).",
		}, []string{"operation", "errno"}),
		hookRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "secretsfs_on_change_runs_total",
			Help: "on_change hook runs, by outcome (ok, failed).",
		}, []string{"outcome"}),
		ops: make(map[opLabel]prometheus.Counter),
	}
	for _, outcome := range []string{"ok", "failed"} {
		m.hookRuns.WithLabelValues(outcome) // shown at 0 before the first run
	}
	locked := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "secretsfs_memory_locked",
		Help: "1 when the daemon's memory is locked (mlockall) so that no secret is swapped to disk; 0 when locking failed (see the warning at start) or --no-mlock.",
	})
	if memoryLocked {
		locked.Set(1)
	}
	m.reg.MustRegister(m.apiCalls, m.apiSeconds, m.refreshes, m.fuseOps, m.hookRuns, locked,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// outcome names a cache error for a label.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, cache.ErrNotFound):
		return "not_found"
	case errors.Is(err, cache.ErrAccessDenied):
		return "access_denied"
	case errors.Is(err, cache.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}

// APICall implements cache.Observer.
func (m *Metrics) APICall(op string, err error, took time.Duration) {
	m.apiCalls.WithLabelValues(op, outcome(err)).Inc()
	m.apiSeconds.WithLabelValues(op).Observe(took.Seconds())
}

// Refresh implements cache.Observer.
func (m *Metrics) Refresh(_ string, err error, took time.Duration) {
	m.refreshes.WithLabelValues(outcome(err)).Observe(took.Seconds())
}

// Op implements fs.Observer.
func (m *Metrics) Op(op string, errno syscall.Errno) {
	k := opLabel{op, errno}
	m.opsMu.Lock()
	c, ok := m.ops[k]
	if !ok {
		name := "OK"
		if errno != 0 {
			name = unix.ErrnoName(errno)
			if name == "" {
				name = fmt.Sprintf("errno%d", int(errno))
			}
		}
		c = m.fuseOps.WithLabelValues(op, name)
		m.ops[k] = c
	}
	m.opsMu.Unlock()
	c.Inc()
}

// HookRan counts one on_change run; nil m counts nothing.
func (m *Metrics) HookRan(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.hookRuns.WithLabelValues("ok").Inc()
	} else {
		m.hookRuns.WithLabelValues("failed").Inc()
	}
}

var (
	_ cache.Observer = (*Metrics)(nil)
	_ sfs.Observer   = (*Metrics)(nil)
)

// CacheObserver is m as the cache's observer: a nil interface when m is
// nil, never an interface holding a nil pointer.
func (m *Metrics) CacheObserver() cache.Observer {
	if m == nil {
		return nil
	}
	return m
}

// FSObserver is m as the filesystem's observer: a nil interface when m is
// nil, never an interface holding a nil pointer.
func (m *Metrics) FSObserver() sfs.Observer {
	if m == nil {
		return nil
	}
	return m
}

// CacheView is what the metrics and the health report read of the cache
// (a *cache.Cache).
type CacheView interface {
	Stats() cache.Stats
	SecretIDs() []string
	Info(secretID string) (cache.SecretInfo, bool)
}

// Source is what a mount adds to the metrics read when scraped: its cache,
// and the count of secrets it shows.
type Source struct {
	Cache  CacheView
	Served func() int
}

// Watch adds the metrics read from s and h when scraped. A scrape costs
// the same whatever the number of secrets, but for h's walk of the cache,
// which is bounded (see Health).
func (m *Metrics) Watch(s Source, h *Health) {
	c := s.Cache
	stat := func(f func(cache.Stats) float64) func() float64 {
		return func() float64 { return f(c.Stats()) }
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "secretsfs_cache_hits_total",
			Help: "Reads served from the cache without waiting for Secrets Manager."},
			stat(func(s cache.Stats) float64 { return float64(s.Hits) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "secretsfs_cache_misses_total",
			Help: "Reads that waited for a Secrets Manager call."},
			stat(func(s cache.Stats) float64 { return float64(s.Misses) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "secretsfs_cached_secrets",
			Help: "Secrets held in the cache."},
			stat(func(s cache.Stats) float64 { return float64(s.Secrets) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "secretsfs_stale_secrets",
			Help: "Cached secrets whose last refresh failed, served from an older answer."},
			func() float64 { return float64(h.Stale()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "secretsfs_secrets_served",
			Help: "Secrets the mount shows."},
			func() float64 { return float64(s.Served()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "secretsfs_healthy",
			Help: "1 when mounted and every secret that was read can be served (as /healthz), else 0."},
			func() float64 {
				if h.Check().Healthy {
					return 1
				}
				return 0
			}),
	)
}
