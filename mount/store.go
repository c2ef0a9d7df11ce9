package mount

import (
	"context"
	"fmt"
	iofs "io/fs"
	"maps"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
)

// store is the filesystem's view of the cache: it implements fs.Store over a
// *cache.Cache, copying what the cache returns into the filesystem's types.
type store struct {
	c *cache.Cache
	// maxStale, when positive, turns a value that has been stale for that
	// long (counted from the secret's last successful refresh) into an
	// error (EIO); clock tells the time for it, and expiry, observing the
	// cache, tells subscribers the moment it happens.
	maxStale time.Duration
	clock    cache.Clock
	expiry   *staleExpiry
}

var _ sfs.Store = store{}

// Value returns a snapshot of a stage of a secret.
func (s store) Value(ctx context.Context, secretID, stage string) (sfs.Value, error) {
	v, err := s.c.GetValue(ctx, secretID, stage)
	return s.served(secretID, v, err)
}

// served turns what the cache read into what the filesystem serves, or into
// EIO once the value has been stale for longer than maxStale.
func (s store) served(secretID string, v cache.Value, err error) (sfs.Value, error) {
	if err != nil {
		return sfs.Value{}, err
	}
	if v.Stale && s.maxStale > 0 && !s.clock.Now().Before(v.RefreshedAt.Add(s.maxStale)) {
		clear(v.Data)
		return sfs.Value{}, fmt.Errorf("secret %q has been stale for longer than --max-stale %v: %w", secretID, s.maxStale, cache.ErrUnavailable)
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

// Subscribe passes the cache's changes on to fn, and with --max-stale the
// moments secrets turn too stale to serve (a Change without a stage).
func (s store) Subscribe(fn func(sfs.Change)) (cancel func()) {
	cancelCache := s.c.Subscribe(func(ch cache.Change) {
		fn(sfs.Change{
			SecretID:     ch.SecretID,
			Stage:        ch.Stage,
			OldVersionID: ch.OldVersionID,
			NewVersionID: ch.NewVersionID,
		})
	})
	if s.expiry == nil {
		return cancelCache
	}
	cancelExpiry := s.expiry.subscribe(s.c.Info, fn)
	return func() {
		cancelExpiry()
		cancelCache()
	}
}

// RequestRefresh forces a refresh of a secret for a reader of the mount
// (user.secretsfs.refresh): only the mount's owner may cut a backoff short.
func (s store) RequestRefresh(ctx context.Context, secretID string, from sfs.Requester) error {
	return s.c.RequestRefresh(ctx, secretID, cache.RefreshRequest{CutBackoff: from.Owner})
}

// Prefetch fetches the values of secrets about to be listed, in batches, in
// the background.
func (s store) Prefetch(secretIDs []string) { s.c.Prefetch(context.Background(), secretIDs) }

// Pin keeps a secret refreshed in the background.
func (s store) Pin(secretID string) (unpin func()) { return s.c.Pin(secretID) }
