package cache

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/secretsfs/secretsfs/cache/cachetest"
)

func (e *env) byVersion(id, vid string) Value {
	e.t.Helper()
	v, err := e.c.GetValueByVersion(context.Background(), id, vid)
	if err != nil {
		e.t.Fatalf("GetValueByVersion(%q, %q): %v", id, vid, err)
	}
	return v
}

func TestVersionReadFetchesOnceAndNeverAgain(t *testing.T) {
	e := newEnv(t, nil)
	v1 := e.client.PutString("db", "s1")
	e.client.PutString("db", "s2")
	for i := 0; i < 5; i++ {
		v := e.byVersion("db", v1)
		if string(v.Data) != "s1" || v.VersionID != v1 || v.Stage != "" {
			t.Fatalf("read %d: %q version %q stage %q", i, v.Data, v.VersionID, v.Stage)
		}
		if !slices.Equal(v.Stages, []string{"AWSPREVIOUS"}) {
			t.Fatalf("stages = %v, want [AWSPREVIOUS]", v.Stages)
		}
	}
	e.calls(1, 1)
	if c := e.client.Log()[1]; c.VersionID != v1 || c.Stage != "" {
		t.Fatalf("GetSecretValue called with %+v; want VersionId %s", c, v1)
	}
	// After the interval the metadata is asked for again, the value is not.
	e.clock.Advance(hour)
	e.byVersion("db", v1)
	e.calls(2, 1)
	if s := e.c.Stats(); s.Hits != 4 || s.Misses != 2 {
		t.Fatalf("hits %d misses %d, want 4 and 2", s.Hits, s.Misses)
	}
}

func TestVersionReadSharesTheStageReadsCache(t *testing.T) {
	e := newEnv(t, nil)
	v1 := e.client.PutString("db", "s1")
	e.str("db")
	v := e.byVersion("db", v1)
	if string(v.Data) != "s1" || v.ARN != e.client.ARN("db") || v.Name != "db" {
		t.Fatalf("value %q ARN %q name %q", v.Data, v.ARN, v.Name)
	}
	e.calls(1, 1)
}

func TestVersionReadOfAnUnknownVersionIsNotFoundAndBacksOff(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	for i := 0; i < 3; i++ {
		if _, err := e.c.GetValueByVersion(context.Background(), "db", "no-such-version"); !isNotFound(err) {
			t.Fatalf("read %d: err = %v, want not found", i, err)
		}
	}
	e.calls(1, 1) // inside the retry delay no new call
	e.clock.Advance(e.cfg.ExceptionRetryDelayBase)
	e.c.GetValueByVersion(context.Background(), "db", "no-such-version")
	e.calls(1, 2)
}

func TestVersionReadOfAMissingSecret(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.c.GetValueByVersion(context.Background(), "nope", "v1"); !isNotFound(err) {
		t.Fatalf("err = %v, want not found", err)
	}
	e.calls(1, 0)
}

func TestVersionReadOfASecretScheduledForDeletion(t *testing.T) {
	e := newEnv(t, nil)
	v1 := e.client.PutString("db", "s1")
	e.byVersion("db", v1)
	e.client.Update("db", func(s *cachetest.Secret) { s.Deleted = true })
	e.clock.Advance(hour)
	if _, err := e.c.GetValueByVersion(context.Background(), "db", v1); !isNotFound(err) {
		t.Fatalf("err = %v, want not found", err)
	}
}

func TestVersionReadServesStaleWhileDescribeFails(t *testing.T) {
	e := newEnv(t, nil)
	v1 := e.client.PutString("db", "s1")
	e.byVersion("db", v1)
	e.client.FailAlways(opD, errThrottled())
	e.clock.Advance(hour)
	v := e.byVersion("db", v1)
	if string(v.Data) != "s1" || !v.Stale {
		t.Fatalf("value %q stale %v, want s1 and stale", v.Data, v.Stale)
	}
}

func TestVersionReadWithNoValueIsUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	v1 := e.client.PutString("db", "s1")
	e.client.FailNext(opG, 1, errThrottled())
	_, err := e.c.GetValueByVersion(context.Background(), "db", v1)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want unavailable", err)
	}
	e.clock.Advance(e.cfg.ExceptionRetryDelayBase)
	if v := e.byVersion("db", v1); string(v.Data) != "s1" {
		t.Fatalf("after the retry delay: %q", v.Data)
	}
}

func TestVersionReadBinaryAndEmptyVersionID(t *testing.T) {
	e := newEnv(t, nil)
	vid := e.client.PutBinary("bin", []byte{0, 1, 2})
	v := e.byVersion("bin", vid)
	if !v.Binary || !slices.Equal(v.Data, []byte{0, 1, 2}) {
		t.Fatalf("binary %v data %v", v.Binary, v.Data)
	}
	if v := e.byVersion("bin", ""); v.Stage != "AWSCURRENT" || v.VersionID != vid {
		t.Fatalf("empty version id read stage %q version %q; want the default stage", v.Stage, v.VersionID)
	}
}

func TestVersionReadCancelledCaller(t *testing.T) {
	e := newEnv(t, nil)
	v1 := e.client.PutString("db", "s1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.c.GetValueByVersion(ctx, "db", v1); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The detached flight still stores its answer for the next caller.
	eventually(t, "the value cached by the detached flight", func() bool {
		v, err := e.c.GetValueByVersion(context.Background(), "db", v1)
		return err == nil && string(v.Data) == "s1"
	})
}
