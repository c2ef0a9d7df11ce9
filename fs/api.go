package fs

import (
	"context"
	"log/slog"
	"os"
	"time"
)

// Store is what the filesystem reads secrets from: the cache, seen through a
// small adapter. Errors match fs.ErrNotExist (ENOENT), fs.ErrPermission
// (EACCES) or a context error (EINTR); anything else is EIO.
type Store interface {
	// Value returns a snapshot of a stage of a secret; an empty stage means
	// the store's default stage.
	Value(ctx context.Context, secretID, stage string) (Value, error)
	// Stages returns the secret's stages and the version each points at.
	Stages(ctx context.Context, secretID string) (map[string]string, error)
	// Subscribe calls fn, from a goroutine of the store's, whenever a stage
	// of a cached secret moves to another version, or what the store serves
	// for a secret stops being servable (a Change without a stage).
	Subscribe(fn func(Change)) (cancel func())
	// Pin keeps a secret refreshed in the background although reads of it
	// do not reach the store (the kernel serves them from its caches).
	Pin(secretID string) (unpin func())
	// Prefetch asks for the default stage's values of secrets about to be
	// needed (the child secrets of a directory being listed, whose JSON
	// keys are their files), in the background and in batches; it returns
	// at once and may do nothing.
	Prefetch(secretIDs []string)
}

// Value is a snapshot of one version of a secret.
type Value struct {
	ARN         string
	VersionID   string
	Stages      []string  // every stage pointing at this version
	CreatedDate time.Time // the version's creation date: mtime and ctime
	FetchedAt   time.Time
	Stale       bool // served from the cache while refreshes fail
	Data        []byte
}

// Change says that a stage of a secret now points at another version. A
// Change without a Stage (and versions) says that what the store serves for
// any stage of the secret changed although no stage moved: its values
// turned too stale to serve.
type Change struct {
	SecretID     string
	Stage        string
	OldVersionID string
	NewVersionID string
}

// SecretRef names a secret to show: Name places it in the tree (its "/"
// separated segments become directories); ID is what the Store is asked
// for (the name, or the ARN the user gave).
type SecretRef struct {
	Name string
	ID   string
}

// Catalog says which secrets the mount shows.
type Catalog interface {
	// List returns the secrets to show now. The slice may be shared (a
	// catalog makes it once per change, not per call): callers never
	// change it.
	List() []SecretRef
	// Find is asked about a name that List does not have, before a lookup
	// answers ENOENT. It returns ok false when there is no such secret, none
	// the catalog would show, or when the catalog shows only an explicit set
	// of secrets. It should remember misses briefly. A secret it finds is
	// shown until the tree is next rebuilt from List: a catalog that keeps
	// showing it includes it in List.
	Find(ctx context.Context, name string) (ref SecretRef, ok bool, err error)
	// OnChange calls fn after List's answer changed (a new listing).
	OnChange(fn func()) (cancel func())
}

// Clock tells the time and waits; the daemon passes its cache's clock, so
// that tests drive the filesystem's time with the same fake one. It is the
// shape of cache.Clock (no implementation lives in fs).
type Clock interface {
	Now() time.Time
	// Alarm returns a channel that receives the time once the clock
	// reaches t; at once if it already has.
	Alarm(t time.Time) <-chan time.Time
}

// Options configure a mount.
type Options struct {
	Store   Store
	Catalog Catalog
	// Clock times what the filesystem times: the audit's timestamps and the
	// wait for the kernel's caches of a file to be dropped. Required.
	Clock Clock
	// DefaultStage is the stage whose value a JSON secret's key files are
	// taken from (AWSCURRENT unless configured otherwise).
	DefaultStage string
	// UID and GID own every file and directory (a mapped file may name its
	// own); 0 is root, as anywhere else.
	UID, GID uint32
	FileMode os.FileMode // default 0400
	DirMode  os.FileMode // default 0500
	// AllowOther lets other users into the mount; the mount then always
	// uses default_permissions so the kernel enforces the modes.
	AllowOther bool
	// KernelCache declines OPEN for the whole mount: reads are served by the
	// kernel's page cache until a version changes (no per-open snapshot
	// in the daemon, no per-open audit).
	KernelCache bool
	// FsName is the filesystem's source in /proc/mounts ("secretsfs" when
	// empty). Under /etc/fstab it is the entry's first field, which is how
	// "mount -a" recognises the entry as mounted.
	FsName string
	// Debug logs every FUSE request (no values).
	Debug  bool
	Logger *slog.Logger

	// Refresher, when set, serves user.secretsfs.refresh: reading it
	// forces a refresh of the file's secret (refresh.go), on behalf of the
	// reader, who may not be trusted.
	Refresher Refresher
	// Observer, when set, learns of every FUSE request and its errno.
	Observer Observer
	// Auditor, when set, learns of every open of a secret file (per-open
	// mode only: in kernel-cache mode opens do not reach the daemon).
	Auditor Auditor

	// ForgetIdle is how long a name below the root may go without a
	// request (a lookup, an open, a stat or a listing that reaches the
	// daemon, for it or a name below it) before the kernel is asked to
	// forget it, so that the memory the kernel and the daemon keep per
	// name follows the names in use rather than every name ever looked up
	// (forget.go). Zero is 3s in per-open mode, where the kernel trusts a
	// name for a second and asks again at its next use, and 2m30s in
	// kernel-cache mode, where it trusts a name for a minute. Shorter makes
	// the kernel look names up again more often; longer keeps more memory
	// after a walk of the tree.
	ForgetIdle time.Duration

	// MountTable, shared by the mounts of a process, tells a mount made as
	// root when its mount point is unmounted from outside, which ends it;
	// nil: the mount watches the mount table alone (a thread of its own).
	MountTable *MountTable

	// Files are files placed at chosen paths by a mapping file, beside the
	// Catalog's secrets (an empty Catalog shows only them); a mapped name
	// wins over a default-layout name it clashes with (mapped.go).
	Files []MappedFile
}
