package fs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// The layout of a mount made as root. The filesystem is made with the new
// mount API (fsopen, fsconfig, fsmount) on a /dev/fuse descriptor that
// go-fuse serves (its "/dev/fd/N" mount point). fsmount gives a read-write
// mount that is in no mount table, the read-write view: only the daemon
// reaches it, through its descriptor (root.rwDir). The user's mount point is
// a read-only clone of it (open_tree, mount_setattr, move_mount), so
// /proc/mounts shows one mount, ro, and the kernel refuses every write on it
// (EROFS) as when the whole mount was read-only, while what the daemon does
// to its own files through the view raises inotify events for whoever
// watches them through the mount point.
//
// The view holds the filesystem: once the mount point is unmounted, by
// Unmount or from outside (umount, an fstab entry's umount), the view is
// closed, and with it go the filesystem and its FUSE connection, which ends
// the server. After kill -9 the process's descriptors close with it and only
// the mount point stays, a stale mount as before (mount/stale.go clears it).

// errNoRWView is withRWDir's answer when the mount has no read-write view.
var errNoRWView = errors.New("the mount has no read-write view")

// withRWDir runs fn with the directory descriptor of the top of the
// read-write view, which stays open until fn returns; errNoRWView when there
// is none (mounted with fusermount3, or no longer mounted).
func (r *root) withRWDir(fn func(dir int) error) error {
	r.rwMu.RLock()
	defer r.rwMu.RUnlock()
	if r.rwDir < 0 {
		return errNoRWView
	}
	return fn(r.rwDir)
}

// maxRead is the most a READ or WRITE carries (go-fuse's MaxWrite, which
// its own mounts give the kernel as max_read too): 64 KiB, the largest
// value Secrets Manager stores, so that a secret is read in one request.
// go-fuse keeps a request buffer of this size for each goroutine reading
// /dev/fuse (two or three per mount when idle, GOMAXPROCS+1 at most): its
// default of 128 KiB made them nearly half of what a mount costs
// (README, Sizing and cost).
const maxRead = 64 << 10

// fsopenFunc is unix.Fsopen; tests put one that fails in its place.
type fsopenFunc func(fsName string, flags int) (int, error)

// errNoMountAPI says that the new mount API is refused (a kernel before
// 5.12, or a system-call filter that does not allow it).
var errNoMountAPI = errors.New("the new mount API (fsopen) is not available")

// MountAPI says whether the kernel gives the new mount API that the root
// layout needs, with mount_setattr (Linux 5.12), its newest call: nil if
// so, else an error wrapping errNoMountAPI. Only the root layout can mount
// over a stale mount: mount(2) through go-fuse asks the mount point for its
// attributes first, which a stale mount answers ENOTCONN.
func MountAPI() error {
	// Where mount_setattr exists, it answers EBADF to a bad descriptor.
	if err := unix.MountSetattr(-1, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != unix.EBADF {
		return fmt.Errorf("%w: mount_setattr: %v", errNoMountAPI, err)
	}
	return nil
}

// rootMount is a mount in the root layout.
type rootMount struct {
	r    *root
	log  func(msg string, args ...any)
	dir  string // the mount point, absolute
	id   uint64 // the mount point's mount id, mountinfo's first field
	conn uint32 // the filesystem's FUSE connection (connOf)

	viewOnce  sync.Once
	stopWatch func() // ends the mount table's watch of id
}

// mountRoot mounts the filesystem newFS makes on dir in the root layout and
// serves it. It fails with errNoMountAPI, before newFS is called, when
// fsopen does.
func mountRoot(dir string, r *root, newFS func() fuse.RawFileSystem, mo *fuse.MountOptions, fsopen fsopenFunc, table *MountTable) (*fuse.Server, *rootMount, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	rootMode := uint32(unix.S_IFDIR)
	var st unix.Stat_t
	switch err := unix.Stat(dir, &st); {
	case err == nil:
		rootMode = st.Mode & unix.S_IFMT
	case err != unix.ENOTCONN:
		return nil, nil, err
	}
	// ENOTCONN: dir is the root of a stale mount, of a daemon that is gone,
	// that the caller chose to mount over (mount.Config.Handover); such a
	// root is a directory.
	if err := MountAPI(); err != nil {
		return nil, nil, err
	}
	fsfd, err := fsopen("fuse", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: fsopen: %w", errNoMountAPI, err)
	}
	defer unix.Close(fsfd) // once fsmount made the mount, or it would keep the filesystem
	fusefd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	rw, err := makeFS(fsfd, fusefd, rootMode, mo)
	if err != nil {
		unix.Close(fusefd)
		return nil, nil, err
	}
	server, err := fuse.NewServer(newFS(), "/dev/fd/"+strconv.Itoa(fusefd), mo)
	if err != nil {
		unix.Close(rw) // the filesystem and its connection end
		return nil, nil, err
	}
	go server.Serve()
	m := &rootMount{r: r, log: r.log.Warn, dir: dir, stopWatch: func() {}}
	fail := func(err error) (*fuse.Server, *rootMount, error) {
		unix.Close(rw)
		server.Wait()
		return nil, nil, err
	}
	if err := server.WaitMount(); err != nil {
		return fail(err)
	}
	if err := pollHack(rw); err != nil {
		return fail(err)
	}
	if m.conn, err = connOf(rw, ""); err != nil {
		return fail(err)
	}
	r.events.Store(true) // before the mount point shows it: what is looked up there is kept refreshed
	if m.id, err = cloneReadOnly(rw, dir); err != nil {
		return fail(err)
	}
	r.rwMu.Lock()
	r.rwDir = rw
	r.rwMu.Unlock()
	if table == nil {
		table = NewMountTable(r.log)
	}
	// Once the mount point is gone, the view goes: the server ends.
	if m.stopWatch, err = table.watch(m.id, m.closeView); err != nil {
		m.stopWatch = func() {}
		m.log("an umount of the mount point will not end the daemon", "mountpoint", dir, "err", err)
	}
	return server, m, nil
}

// makeFS makes a FUSE filesystem served on fusefd, with the options
// go-fuse's direct mount gives mount(2), and returns the descriptor of a
// read-write mount of it that is in no mount table.
func makeFS(fsfd, fusefd int, rootMode uint32, mo *fuse.MountOptions) (int, error) {
	set := func(key, value string) error {
		if err := unix.FsconfigSetString(fsfd, key, value); err != nil {
			return fsError(fsfd, "fsconfig "+key+"="+value, err)
		}
		return nil
	}
	for _, kv := range [][2]string{
		{"source", mo.FsName},
		{"subtype", mo.Name},
		{"fd", strconv.Itoa(fusefd)},
		{"rootmode", strconv.FormatUint(uint64(rootMode), 8)},
		{"user_id", strconv.Itoa(os.Geteuid())},
		{"group_id", strconv.Itoa(os.Getegid())},
		{"max_read", strconv.Itoa(maxRead)},
	} {
		if err := set(kv[0], kv[1]); err != nil {
			return -1, err
		}
	}
	flags := mo.Options
	if mo.AllowOther {
		flags = append(flags[:len(flags):len(flags)], "allow_other")
	}
	for _, o := range flags {
		if k, v, ok := strings.Cut(o, "="); ok {
			if err := set(k, v); err != nil {
				return -1, err
			}
		} else if err := unix.FsconfigSetFlag(fsfd, o); err != nil {
			return -1, fsError(fsfd, "fsconfig "+o, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fsError(fsfd, "fsconfig create", err)
	}
	rw, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return -1, fsError(fsfd, "fsmount", err)
	}
	return rw, nil
}

// fsError is err of a call on the filesystem context fsfd, with the message
// the kernel left there, if any.
func fsError(fsfd int, what string, err error) error {
	buf := make([]byte, 512)
	if n, rerr := unix.Read(fsfd, buf); rerr == nil && n > 0 {
		return fmt.Errorf("%s: %w (%s)", what, err, strings.TrimSpace(string(buf[:n])))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// pollHack is what go-fuse's WaitMount does on a mount point, here on the
// view: it has the kernel ask for POLL once, which go-fuse answers ENOSYS,
// so that the kernel never asks again; else a program of the daemon polling
// one of its own files could wait on a request nobody is left to serve.
func pollHack(rw int) error {
	fd, err := unix.Openat(rw, ".go-fuse-epoll-hack", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLPRI | unix.POLLOUT}}, 0)
	return unix.Close(fd)
}

// cloneReadOnly mounts a read-only clone of the mount rw on dir and returns
// the clone's mount id.
func cloneReadOnly(rw int, dir string) (uint64, error) {
	clone, err := unix.OpenTree(rw, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return 0, fmt.Errorf("open_tree: %w", err)
	}
	// Closed once moved: the descriptor would keep the mount point busy.
	defer unix.Close(clone)
	if err := unix.MountSetattr(clone, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return 0, fmt.Errorf("mount_setattr ro: %w", err)
	}
	var stx unix.Statx_t
	if err := unix.Statx(clone, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, fmt.Errorf("statx: %w", err)
	}
	if stx.Mask&unix.STATX_MNT_ID == 0 {
		return 0, errors.New("statx gives no mount id")
	}
	// As mount(2): symbolic links and automounts on the way are followed.
	if err := unix.MoveMount(clone, "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_SYMLINKS|unix.MOVE_MOUNT_T_AUTOMOUNTS); err != nil {
		return 0, fmt.Errorf("move_mount: %w", err)
	}
	return stx.Mnt_id, nil
}

// closeView closes the read-write view, once, after any use of it by
// withRWDir ends.
func (m *rootMount) closeView() {
	m.viewOnce.Do(func() {
		m.r.rwMu.Lock()
		defer m.r.rwMu.Unlock()
		unix.Close(m.r.rwDir)
		m.r.rwDir = -1
	})
}

// unmount unmounts the mount point and closes the view. It fails with EBUSY
// while files are open on the mount point.
func (m *rootMount) unmount() error {
	var err error
	delay := time.Duration(0)
	for range 5 {
		if err = unix.Unmount(m.dir, 0); err == nil {
			break
		}
		// As go-fuse does: a file just closed may hold the mount a little
		// longer.
		delay = 2*delay + 5*time.Millisecond
		time.Sleep(delay)
	}
	if err != nil {
		return fmt.Errorf("umount %s: %w", m.dir, err)
	}
	m.closeView()
	m.stopWatch()
	return nil
}
