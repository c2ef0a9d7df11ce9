package mount

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
)

// mountPoint checks and prepares the directory the filesystem is mounted on.
// Its functions are fields so that tests can play a stale mount.
type mountPoint struct {
	stat func(name string) (os.FileInfo, error)
	// detach lazily unmounts whatever is mounted on dir.
	detach func(ctx context.Context, dir string) error
}

// systemMountPoint works on the real filesystem.
func systemMountPoint() mountPoint {
	return mountPoint{stat: os.Stat, detach: lazyUnmount}
}

// prepare validates dir and clears a stale mount left by a daemon that died
// (stat answers ENOTCONN, "transport endpoint is not connected"). It returns
// whether it cleared one.
func (m mountPoint) prepare(ctx context.Context, dir string, log *slog.Logger) (cleared bool, err error) {
	fi, err := m.stat(dir)
	if isStale(err) {
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
