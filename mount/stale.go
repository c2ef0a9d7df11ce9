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
}

// systemMountPoint works on the real filesystem.
func systemMountPoint() mountPoint {
	return mountPoint{stat: os.Stat, detach: lazyUnmount, mounted: mountedOn, statfs: statfs}
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
func (m mountPoint) prepare(ctx context.Context, dir string, log *slog.Logger) (cleared bool, err error) {
	fi, err := m.stat(dir)
	stale := isStale(err)
	if err == nil && m.mounted != nil {
		real, rerr := filepath.EvalSymlinks(dir)
		if rerr != nil {
			real = dir
		}
		if top, ok := m.mounted(real); ok && top.fstype == liveType {
			if m.statfs == nil || !isStale(m.statfs(dir)) {
				return false, fmt.Errorf("mount point %s is already mounted: a running secretsfs serves it (source %q); unmount it first (umount %s) or choose another directory", dir, top.source, dir)
			}
			stale = true // stat was answered from the kernel's cache
		}
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

// maxStacked bounds the mounts detachAll takes off one directory.
const maxStacked = 16

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
