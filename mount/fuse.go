package mount

import (
	sfs "github.com/secretsfs/secretsfs/fs"
)

// mountedFS is a mounted filesystem, as package fs serves it.
type mountedFS interface {
	// Unmount asks the kernel to unmount; it fails while files are open.
	Unmount() error
	// Wait returns once the filesystem no longer serves.
	Wait()
	// Gone is closed when the filesystem stops serving, whoever unmounted
	// it: the daemon, or someone running umount on the mount point (as
	// "umount /run/secrets" does for a mount made from /etc/fstab). Nil
	// never fires.
	Gone() <-chan struct{}
}

// fuseMount mounts the secretsfs node tree on dir.
func fuseMount(dir string, opts sfs.Options) (mountedFS, error) {
	srv, err := sfs.Mount(dir, opts)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return srv, nil
}
