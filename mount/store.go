package mount

import (
	"context"
	"fmt"
	iofs "io/fs"
	"maps"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
)

// store is the filesystem's view of the cache: it implements fs.Store over a
// *cache.Cache, copying what the cache returns into the filesystem's types.
type store struct {
	c *cache.Cache
}

var _ sfs.Store = store{}

// Value returns a snapshot of a stage of a secret.
func (s store) Value(ctx context.Context, secretID, stage string) (sfs.Value, error) {
	v, err := s.c.GetValue(ctx, secretID, stage)
	if err != nil {
		return sfs.Value{}, err
	}
	return sfs.Value{
		ARN:         v.ARN,
		VersionID:   v.VersionID,
		Stages:      append([]string(nil), v.Stages...),
		CreatedDate: v.CreatedDate,
		FetchedAt:   v.FetchedAt,
		Stale:       v.Stale,
		Data:        v.Data, // already a copy made for this caller
	}, nil
}

// Stages returns the secret's stages and the version each points at. A secret
// scheduled for deletion has none: it is not found.
func (s store) Stages(ctx context.Context, secretID string) (map[string]string, error) {
	info, err := s.c.Describe(ctx, secretID)
	if err != nil {
		return nil, err
	}
	if info.ScheduledForDeletion {
		return nil, fmt.Errorf("secret %q is scheduled for deletion: %w", secretID, iofs.ErrNotExist)
	}
	return maps.Clone(info.Stages), nil
}

// Subscribe passes the cache's changes on to fn.
func (s store) Subscribe(fn func(sfs.Change)) (cancel func()) {
	return s.c.Subscribe(func(ch cache.Change) {
		fn(sfs.Change{
			SecretID:     ch.SecretID,
			Stage:        ch.Stage,
			OldVersionID: ch.OldVersionID,
			NewVersionID: ch.NewVersionID,
		})
	})
}

// Pin keeps a secret refreshed in the background.
func (s store) Pin(secretID string) (unpin func()) { return s.c.Pin(secretID) }
