package mount

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/fs"
)

// mountPoint checks and prepares the directory the filesystem is mounted on.
// Its functions are fields so that tests can play a stale mount.
type mountPoint struct {
	stat func(name string) (os.FileInfo, error)
	// detach lazily unmounts whatever is mounted on dir.
	detach func(ctx context.Context, dir string) error
	// mounted returns the mount on top of dir, if any; nil means none.
	mounted func(dir string) (mountEntry, bool)
	// statfs asks the filesystem on dir for its statistics: unlike stat,
	// which the kernel may answer from its cache, it always reaches a FUSE
	// daemon, so a dead one's mount answers ENOTCONN.
	statfs func(dir string) error
	// mountAPI says whether a new mount can go over a stale one
	// (fs.MountAPI); nil means it can.
	mountAPI func() error
}

// systemMountPoint works on the real filesystem.
func systemMountPoint() mountPoint {
	return mountPoint{stat: os.Stat, detach: lazyUnmount, mounted: mountedOn, statfs: statfs, mountAPI: canMountOver}
}

// canMountOver: only root's mounts, in the root layout, can go over a stale
// mount; fusermount3 asks the mount point for its attributes first.
func canMountOver() error {
	if os.Geteuid() != 0 {
		return errors.New("only root can mount over a stale mount")
	}
	return fs.MountAPI()
}

// top returns the mount on top of dir, if any and if m can tell.
func (m mountPoint) top(dir string) (mountEntry, bool) {
	if m.mounted == nil {
		return mountEntry{}, false
	}
	return m.mounted(dir)
}

func statfs(dir string) error {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st)
}

// prepare validates dir and clears a stale mount left by a daemon that died
// ("transport endpoint is not connected"). A mount point that a live
// secretsfs serves is refused: mounting again would stack a second daemon on
// the first ("mount DIR" twice, "mount -a" with an entry mount(8) does not
// recognise as mounted). It returns whether it cleared a stale mount.
//
// With over (Config.Handover) a secretsfs mount on dir, live or stale, is
// left in place to be mounted over, where the kernel allows it; else every
// one is detached.
func (m mountPoint) prepare(ctx context.Context, dir string, over bool, log *slog.Logger) (cleared bool, err error) {
	fi, err := m.stat(dir)
	stale := isStale(err)
	var top mountEntry
	mounted := false
	if (err == nil || stale) && m.mounted != nil {
		real, rerr := filepath.EvalSymlinks(dir)
		if rerr != nil {
			real = dir
		}
		top, mounted = m.mounted(real)
	}
	if over && (stale || mounted) {
		return m.prepareOver(ctx, dir, top, stale, log)
	}
	if err == nil && mounted && top.fstype == liveType {
		if m.statfs == nil || !isStale(m.statfs(dir)) {
			return false, fmt.Errorf("mount point %s is already mounted: a running secretsfs serves it (source %q); unmount it first (umount %s) or choose another directory", dir, top.source, dir)
		}
		stale = true // stat was answered from the kernel's cache
	}
	if stale {
		log.Warn("the mount point holds a stale mount of a daemon that is gone; unmounting it", "mountpoint", dir)
		if err := m.detach(ctx, dir); err != nil {
			return false, fmt.Errorf("mount point %s holds a stale mount that could not be unmounted (try umount -l %s): %w", dir, dir, err)
		}
		cleared = true
		fi, err = m.stat(dir)
	}
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return cleared, fmt.Errorf("mount point %s does not exist; create it with mkdir -p %s", dir, dir)
	case isStale(err):
		return cleared, fmt.Errorf("mount point %s still holds a stale mount after unmounting it: %w", dir, err)
	case err != nil:
		return cleared, fmt.Errorf("mount point %s: %w", dir, err)
	case !fi.IsDir():
		return cleared, fmt.Errorf("mount point %s is not a directory; give a directory", dir)
	}
	return cleared, nil
}

// prepareOver is prepare with over, for dir holding top (the mount on it,
// as far as mountinfo tells) and answering ENOTCONN if stale. A new mount
// made over a secretsfs one is what the binds of the old one see too, the
// binds that slave mounts of it hold (a container's bind of a CSI volume,
// with HostToContainer propagation): detaching the old one would leave
// them on it. A mount of another kind is refused.
func (m mountPoint) prepareOver(ctx context.Context, dir string, top mountEntry, stale bool, log *slog.Logger) (bool, error) {
	if top.fstype != "" && top.fstype != liveType {
		return false, fmt.Errorf("%s holds a %s mount (source %q) that secretsfs did not make; unmount it (umount %s)", dir, top.fstype, top.source, dir)
	}
	err := error(nil)
	if m.mountAPI != nil {
		err = m.mountAPI()
	}
	if err == nil {
		log.Info("mounting over the secretsfs mount there, which its binds then see", "mountpoint", dir, "stale", stale)
		return false, nil
	}
	log.Warn("cannot mount over the secretsfs mount there; detaching it instead: its binds (running containers) keep the old one", "mountpoint", dir, "reason", err)
	n, err := m.detachAll(ctx, dir, log)
	if err != nil {
		return n > 0, err
	}
	fi, err := m.stat(dir)
	switch {
	case err != nil:
		return n > 0, fmt.Errorf("mount point %s: %w", dir, err)
	case !fi.IsDir():
		return n > 0, fmt.Errorf("mount point %s is not a directory; give a directory", dir)
	}
	return n > 0, nil
}

// liveType is the type of a secretsfs mount in mountinfo.
const liveType = "fuse.secretsfs"

// isStale reports whether err is what a dead FUSE daemon's mount answers.
func isStale(err error) bool { return errors.Is(err, syscall.ENOTCONN) }

// lazyUnmount detaches the mount on dir even while files on it are open:
// directly as root, through fusermount3 otherwise.
func lazyUnmount(ctx context.Context, dir string) error {
	if os.Geteuid() == 0 {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("umount -l %s: %w", dir, err)
		}
		return nil
	}
	for _, helper := range []string{"fusermount3", "fusermount"} {
		path, err := exec.LookPath(helper)
		if err != nil {
			continue
		}
		out, err := exec.CommandContext(ctx, path, "-u", "-z", dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s -u -z %s: %w: %s", helper, dir, err, out)
		}
		return nil
	}
	return errors.New("neither fusermount3 nor fusermount found; install the fuse3 package")
}

// DetachAll lazily unmounts every secretsfs filesystem mounted on dir, top
// first, whether a live daemon serves it or the daemon is gone (a stale
// mount answering ENOTCONN), so that dir can be mounted again or removed:
// a CSI driver's volumes outlive the driver process that mounted them. It
// returns how many it detached. A mount of another type on dir is left
// alone and reported as an error. The caller must not serve dir itself.
func DetachAll(ctx context.Context, dir string, log *slog.Logger) (int, error) {
	return systemMountPoint().detachAll(ctx, dir, log)
}

// maxStacked bounds the mounts detachAll takes off one directory. A CSI
// volume holds one more for each restart of the driver during its pod's
// life (Config.Handover).
const maxStacked = 64

func (m mountPoint) detachAll(ctx context.Context, dir string, log *slog.Logger) (int, error) {
	n := 0
	for ; n < maxStacked; n++ {
		top, ok := m.mounted(dir)
		if !ok {
			return n, nil
		}
		if top.fstype != liveType {
			return n, fmt.Errorf("%s holds a %s mount (source %q) that secretsfs did not make; unmount it (umount %s)", dir, top.fstype, top.source, dir)
		}
		// Not asked whether it answers: a hung daemon would hang the call.
		log.Info("detaching a secretsfs mount that this process does not serve", "mountpoint", dir, "source", top.source)
		if err := m.detach(ctx, dir); err != nil {
			return n, fmt.Errorf("%s holds a secretsfs mount that could not be unmounted (try umount -l %s): %w", dir, dir, err)
		}
	}
	return n, fmt.Errorf("%s still holds mounts after %d were detached", dir, n)
}

// RebindBelow brings the binds below dir of a secretsfs mount that is not
// the one on src back to src's: over each such mount (a subPath of a CSI
// volume, which kubelet bound from the volume's mount before a driver
// restart, when another process served it) it mounts a bind of the same
// path below src, which the slaves of the old bind (the container's bind
// of the subPath, with HostToContainer propagation) see too. The new bind
// is read-only when src's mount is. It returns how many it bound.
func RebindBelow(src, dir string, log *slog.Logger) (int, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return 0, err
	}
	own, ok := topMount(data, src)
	if !ok || own.fstype != liveType {
		return 0, fmt.Errorf("%s holds no secretsfs mount", src)
	}
	n := 0
	var errs []error
	for _, m := range topMountsBelow(data, dir) {
		if m.fstype != liveType || m.dev == own.dev {
			continue
		}
		from := filepath.Join(src, m.root)
		if rel, err := filepath.Rel(src, from); err != nil || !(rel == "." || filepath.IsLocal(rel)) {
			errs = append(errs, fmt.Errorf("%s: the bind's root %q is outside the mount", m.dir, m.root))
			continue
		}
		if err := unix.Mount(from, m.dir, "", unix.MS_BIND, ""); err != nil {
			errs = append(errs, fmt.Errorf("bind %s of the new mount on %s: %w", m.root, m.dir, err))
			continue
		}
		log.Info("bound the path again from the new mount", "path", m.dir, "root", m.root)
		n++
	}
	return n, errors.Join(errs...)
}
