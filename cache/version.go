package cache

import "context"

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
	return c.value(ctx, secretID, target{versionID: versionID})
}
