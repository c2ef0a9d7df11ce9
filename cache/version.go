package cache

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// GetValueByVersion returns a snapshot of one version of the secret, named by
// its version id rather than by a stage. Versions are immutable, so the value
// is fetched once, in the same single flight and version cache as stage reads,
// and never again while it stays cached. The secret's metadata is refreshed
// first when it has expired, as for any read, so a secret that is gone or
// scheduled for deletion is not found. Value.Stage is empty; Value.Stages
// lists the stages that point at the version now (none for a deprecated
// version). An empty versionID reads the default stage.
func (c *Cache) GetValueByVersion(ctx context.Context, secretID, versionID string) (Value, error) {
	if versionID == "" {
		return c.GetValue(ctx, secretID, "")
	}
	e := c.entry(secretID)
	waited := false

	now := c.clock.Now()
	e.mu.Lock()
	if e.needsRefresh(now) {
		e.mu.Unlock()
		waited = true
		if err := c.waitFlight(ctx, c.secretFlight(e, (*secretEntry).needsRefresh)); err != nil && ctx.Err() != nil {
			return Value{}, fmt.Errorf("read %q: %w", secretID, ctx.Err())
		}
		e.mu.Lock()
		now = c.clock.Now()
	}
	if !e.used {
		e.used = true
		c.nudge()
	}
	if _, err := c.resolveMetaLocked(e); err != nil {
		e.mu.Unlock()
		c.count(waited)
		return Value{}, err
	}
	ve, ok := e.versions.get(versionID)
	if !ok || ve.needsFetch(now) {
		e.mu.Unlock()
		waited = true
		if err := c.waitFlight(ctx, c.versionFlight(e, versionID)); err != nil && ctx.Err() != nil {
			return Value{}, fmt.Errorf("read %q: %w", secretID, ctx.Err())
		}
		e.mu.Lock()
		ve, ok = e.versions.get(versionID)
	}
	defer e.mu.Unlock()
	c.count(waited)
	if !ok || !ve.hasValue {
		if ok && ve.err != nil {
			return Value{}, ve.err
		}
		return Value{}, fmt.Errorf("secret %q version %q: no value: %w", secretID, versionID, ErrUnavailable)
	}
	var val Value
	err := c.extractLocked(ve, e, e.err != nil, func(v *secretsmanager.GetSecretValueOutput, e *secretEntry, ve *versionEntry, stale bool) error {
		var err error
		val, err = c.valueOf(secretID, "", v, e, ve, stale)
		return err
	})
	return val, err
}
