package mount

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
)

// metrics are the daemon's Prometheus metrics, in a registry of their own.
// Labels carry operation names, outcomes and errno names, never a secret
// name or value.
type metrics struct {
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

// newMetrics builds the metrics; hyg says whether memory is locked.
func newMetrics(hyg hygieneOutcome) *metrics {
	m := &metrics{
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
	memoryLocked := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "secretsfs_memory_locked",
		Help: "1 when the daemon's memory is locked (mlockall) so that no secret is swapped to disk; 0 when locking failed (see the warning at start) or --no-mlock.",
	})
	if hyg.memoryLocked {
		memoryLocked.Set(1)
	}
	m.reg.MustRegister(m.apiCalls, m.apiSeconds, m.refreshes, m.fuseOps, m.hookRuns, memoryLocked,
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
func (m *metrics) APICall(op string, err error, took time.Duration) {
	m.apiCalls.WithLabelValues(op, outcome(err)).Inc()
	m.apiSeconds.WithLabelValues(op).Observe(took.Seconds())
}

// Refresh implements cache.Observer.
func (m *metrics) Refresh(_ string, err error, took time.Duration) {
	m.refreshes.WithLabelValues(outcome(err)).Observe(took.Seconds())
}

// Op implements fs.Observer.
func (m *metrics) Op(op string, errno syscall.Errno) {
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

func (m *metrics) hookRan(ok bool) {
	if ok {
		m.hookRuns.WithLabelValues("ok").Inc()
	} else {
		m.hookRuns.WithLabelValues("failed").Inc()
	}
}

var (
	_ cache.Observer = (*metrics)(nil)
	_ sfs.Observer   = (*metrics)(nil)
)

// watch adds the metrics read from the cache and the catalog when scraped.
func (m *metrics) watch(c *cache.Cache, served func() int, h *health) {
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
			func() float64 { return float64(staleCount(c)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "secretsfs_secrets_served",
			Help: "Secrets the mount shows."},
			func() float64 { return float64(served()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "secretsfs_healthy",
			Help: "1 when mounted and every secret that was read can be served (as /healthz), else 0."},
			func() float64 {
				if h.check().Healthy {
					return 1
				}
				return 0
			}),
	)
}

func staleCount(c *cache.Cache) int {
	n := 0
	for _, id := range c.SecretIDs() {
		if in, ok := c.Info(id); ok && in.Stale {
			n++
		}
	}
	return n
}

// health answers /healthz: healthy when the filesystem is mounted and every
// secret the cache holds because it was read, or is pinned, can be served:
// its last refresh succeeded, or failed while an answer no older than
// --max-stale is still served, and no stage points at a version whose value
// failed to be fetched. A secret only described (a name looked up, a
// directory listed) does not count, nor does one that does not exist (a
// reader's wrong path): a typo must not fail a liveness probe. The cache
// retries a failed secret that counts in the background, so health comes
// back without a reader. Mapped files' secrets are pinned, so they count
// before anybody reads them.
type health struct {
	c        *cache.Cache
	mounted  atomic.Bool
	maxStale time.Duration
	now      func() time.Time
}

// healthReport is /healthz's JSON body.
type healthReport struct {
	Healthy    bool             `json:"healthy"`
	Mounted    bool             `json:"mounted"`
	Secrets    int              `json:"secrets_checked"`
	Unservable []unservableInfo `json:"unservable,omitempty"`
}

type unservableInfo struct {
	SecretID string `json:"secret_id"`
	Reason   string `json:"reason"`
}

func (h *health) check() healthReport {
	r := healthReport{Mounted: h.mounted.Load()}
	for _, id := range h.c.SecretIDs() {
		in, ok := h.c.Info(id)
		if !ok || !in.Read && !in.Pinned {
			continue // never read: nothing served, nothing failed
		}
		r.Secrets++
		if reason := h.unservable(in); reason != "" {
			r.Unservable = append(r.Unservable, unservableInfo{SecretID: id, Reason: reason})
		}
	}
	r.Healthy = r.Mounted && len(r.Unservable) == 0
	return r
}

// unservable says why a secret cannot be served, or "" when it can.
func (h *health) unservable(in cache.SecretInfo) string {
	if in.LastError != nil {
		switch {
		case errors.Is(in.LastError, cache.ErrNotFound):
			return ""
		case !in.Stale:
			return fmt.Sprintf("no value: %v", in.LastError)
		case h.maxStale > 0 && h.now().Sub(in.RefreshedAt) > h.maxStale:
			return fmt.Sprintf("stale longer than --max-stale %v: %v", h.maxStale, in.LastError)
		}
	}
	for _, v := range in.Versions {
		if v.LastError == nil || !v.FetchedAt.IsZero() {
			continue
		}
		for stage, vid := range in.Stages {
			if vid == v.VersionID {
				return fmt.Sprintf("stage %s: version %s cannot be fetched: %v", stage, vid, v.LastError)
			}
		}
	}
	return ""
}

// metricsServer serves /metrics and /healthz.
type metricsServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// listenMetrics binds the address at once, so a bad address fails the
// start rather than the first scrape.
func listenMetrics(addr string, m *metrics, h *health, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		rep := h.check()
		w.Header().Set("Content-Type", "application/json")
		if !rep.Healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(rep)
	})
	s := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "error", err)
		}
	}()
	log.Info("serving metrics", "address", ln.Addr().String())
	return s, nil
}

func (s *metricsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
	<-s.done
}
