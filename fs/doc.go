// Package fs is secretsfs's go-fuse node tree: it shows secrets as
// directories and their stages and JSON keys as read-only files. It knows
// nothing of the AWS SDK: it reads through the small Store and Catalog
// interfaces that the mount daemon implements over the cache.
//
// Main decisions:
//   - The tree is dynamic (Lookup and Readdir compute children from the
//     catalog and the store), and each path keeps one inode number for the
//     life of the mount (a keyed hash of the path, root.go), so a file
//     keeps its inode across rotations and single-file bind mounts keep
//     working.
//   - Per-open mode (default): every open takes a snapshot of the value;
//     all reads through that handle see it, directly (FOPEN_DIRECT_IO),
//     never through the page cache: the kernel keeps one page cache and one
//     size per inode, shared by every handle, so a handle opened before a
//     rotation and the opens after it cannot both be served from it. stat
//     (GETATTR, with or without a handle) always answers the current
//     content, which is what the next open reads. mmap still works
//     (CAP_DIRECT_IO_ALLOW_MMAP) and goes through the page cache.
//   - Kernel-cache mode: Open answers ENOSYS, which makes the kernel stop
//     sending OPEN (and FLUSH) for the whole mount; reads are served from
//     the page cache until a version changes. Secrets whose files the
//     kernel holds are pinned in the cache so they keep refreshing although
//     reads no longer reach the daemon; the kernel's forgetting of a
//     secret's last file unpins it (mapped files' secrets stay pinned).
//   - When the store reports that a stage moved, one goroutine invalidates
//     the kernel's caches for the affected files and names. It never runs
//     inside a FUSE request, which could deadlock (go-fuse's api.go). It
//     finds the files in a registry by secret id with one node per
//     identity: a lookup hands out the node the kernel already holds
//     (go-fuse would drop any other), and a file's node leaves the
//     registry when the kernel forgets it (OnForget), so the registry is
//     the size of what the kernel holds. Directories it finds in go-fuse's
//     tree, which holds what the kernel holds: the mount keeps no directory
//     nodes of its own.
//   - Memory follows the names in use: a sweeper asks the kernel to drop
//     the names no request used for Options.ForgetIdle (NotifyEntry, from
//     its own goroutine), so that it forgets their inodes and go-fuse and
//     the registry drop their nodes; open files and working directories
//     keep theirs. Nodes are queued once when a lookup hands them out and
//     stamped by each request, so the sweeper never walks the tree
//     (forget.go).
//   - Cost independent of the number of secrets: the name index (index.go)
//     keeps each directory's children sorted and each secret's directories
//     by id, so a lookup, a read or a change asks a map or a binary search;
//     only a change of the catalog's listing rebuilds it (O(N log N) once).
//     Per node the mount keeps little beside go-fuse's inode (a file node is
//     184 bytes with it): its directory, its name and its secret, shared
//     with go-fuse and the index, an 8-byte sum of the content it served
//     and an 8-byte stamp of its last use (forget.go). An inode number is a keyed hash of the parent's number, the
//     kind and the name (root.go): stable for the life of the mount with no
//     table of the numbers given out, so nothing stays of a name the kernel
//     forgot.
//   - Every error becomes an errno in one function, ErrnoOf (through
//     toErrno, which logs an unknown error once). A mapped file's failure
//     is logged where it is rendered, once per change of its cause
//     (failureLog), whatever its errno.
//   - Every request passes through one raw wrapper (observe.go) that reports
//     it with its errno to an optional Observer and answers EROFS to every
//     request that would write (readonly.go), for every node type, but for
//     the daemon's own: the filesystem is read-write (as root only in the
//     read-write view the daemon reaches, rootmount.go, the mount point
//     being its read-only clone; as non-root the one mount), so that,
//     when a change of the store changes a file's bytes, the daemon writes
//     them to the file itself (or mknods or unlinks a file that appeared or
//     vanished, and mkdirs or rmdirs a directory that a new listing made
//     appear or leave), which makes the kernel raise the inotify events
//     watchers wait for. The
//     filesystem accepts such a request only from the writer's thread and
//     only as exactly the operation it has pending; it changes nothing
//     (selfwrite.go). Reading user.secretsfs.refresh forces a refresh and
//     works for any reader in both modes.
//   - As root, an umount of the mount point from outside ends the mount:
//     a MountTable (mounttable.go), which the mounts of a process share,
//     watches /proc/self/mountinfo for all of them with one goroutine and
//     closes the read-write view of each mount whose mount point left.
//     What a mount costs besides is mostly go-fuse's readers of its
//     requests, each with a buffer of maxRead (64 KiB, the largest secret
//     value) and a thread.
//   - Opens in per-open mode are reported to an optional Auditor with the
//     caller's thread, uid and gid, and so are lookups of a file that is
//     refused before an OPEN could come.
//   - The layout's rules are decided here alone and exported for the
//     daemon's hooks: where a secret is shown (DirOf) and which files of
//     its directory a stage's move changes (ChangedFiles).
//   - Time comes from the injected Options.Clock (the daemon passes its
//     cache's clock): the audit's timestamps and the wait for the kernel's
//     caches to be dropped. fs has no clock of its own.
package fs
