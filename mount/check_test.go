package mount

import (
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache"
)

// check reads through a cache configured as the daemon's, so that what check
// reports (a retry, a stage, an eviction) is what the mount would do. Issue
// 11: check built its own copy and left out --max-cache-size,
// --retry-growth-factor and --refresh-interval.
func TestDefect11_04_CheckBuildsTheCacheAsTheDaemonDoes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RefreshInterval = 7 * time.Minute
	cfg.MaxCacheSize = 77
	cfg.RetryDelayBase = 3 * time.Second
	cfg.RetryGrowthFactor = 1.5
	cfg.RetryDelayMax = 90 * time.Second
	cfg.DefaultStage = "AWSPENDING"

	daemon := cfg.Cache(cache.SystemClock(), slog.New(slog.DiscardHandler), nil) // as run builds it
	check := checkCacheConfig(cfg)

	// Every setting of the mount reaches the cache.
	want := map[string]any{
		"SecretRefreshInterval":      cfg.RefreshInterval,
		"MaxCacheSize":               cfg.MaxCacheSize,
		"ExceptionRetryDelayBase":    cfg.RetryDelayBase,
		"ExceptionRetryGrowthFactor": cfg.RetryGrowthFactor,
		"ExceptionRetryDelayMax":     cfg.RetryDelayMax,
		"DefaultVersionStage":        cfg.DefaultStage,
	}
	for name, built := range map[string]cache.Config{"daemon": daemon, "check": check} {
		v := reflect.ValueOf(built)
		for field, w := range want {
			if got := v.FieldByName(field).Interface(); got != w {
				t.Errorf("%s: cache %s = %v, want %v", name, field, got, w)
			}
		}
	}

	// And the two agree on everything else, but for what legitimately
	// differs: check makes one pass and exits, so it needs no background
	// refresh (RefreshAhead 0), exports no metrics (Observer) and prints a
	// table, not logs (Logger).
	if check.RefreshAhead != 0 {
		t.Errorf("check: RefreshAhead = %v, want 0 (no background work in one pass)", check.RefreshAhead)
	}
	if daemon.RefreshAhead == 0 {
		t.Errorf("daemon: RefreshAhead = 0, want background refresh on")
	}
	d, c := reflect.ValueOf(daemon), reflect.ValueOf(check)
	for i := range d.NumField() {
		switch field := d.Type().Field(i).Name; field {
		case "RefreshAhead", "Observer", "Logger":
		default:
			if dv, cv := d.Field(i).Interface(), c.Field(i).Interface(); dv != cv {
				t.Errorf("cache %s: daemon %v, check %v", field, dv, cv)
			}
		}
	}
}
