package mount

import sfs "github.com/secretsfs/secretsfs/fs"

// unmountedOutside returns a channel that is closed when the filesystem stops
// serving without the daemon having unmounted it: someone ran umount on the
// mount point, as "umount /run/secrets" does for a mount made from
// /etc/fstab. The daemon then exits instead of lingering without a mount.
// Servers other than package fs's (test doubles) give a nil channel, which
// never fires.
func unmountedOutside(srv mountedFS) <-chan struct{} {
	s, ok := srv.(*sfs.Server)
	if !ok {
		return nil
	}
	gone := make(chan struct{})
	go func() {
		s.Wait()
		close(gone)
	}()
	return gone
}
