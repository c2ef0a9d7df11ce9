// Package fstab is the mount(8) helper of secretsfs, so that /etc/fstab can
// mount it:
//
//	secretsfs  /srv/app/secrets  fuse.secretsfs  allow_other,secret=app/db,env_file=/etc/secretsfs/secretsfs.env  0 0
//
// mount(8) runs /sbin/mount.fuse.secretsfs (type fuse.secretsfs) or
// /sbin/mount.secretsfs (type secretsfs) as "HELPER SOURCE MOUNTPOINT
// [-sfnv] [-o OPTIONS] [-t TYPE]" and waits for it. Both are symbolic links
// to the secretsfs binary, which runs this package when its program name is
// one of theirs (IsHelper).
//
// The options are the flags of "secretsfs mount", derived from the
// command's own flag definitions, without dashes and with "_" or "-"
// (refresh_interval=5m, allow_other, secret=a,secret=b), and two of the
// helper's own: env_file=PATH (KEY=VALUE lines read as data with systemd's
// EnvironmentFile= rules, package envfile, into the daemon's environment)
// and mount_timeout=SECONDS. Generic mount options (rw, nofail, _netdev,
// x-*...) are accepted and ignored. SOURCE becomes the filesystem's name in
// /proc/mounts (--fsname), which is how "mount -a" recognises the entry as
// mounted and skips it; "mount DIR" of a mounted entry reaches the daemon,
// which refuses a mount point a live secretsfs serves.
//
// The helper starts "secretsfs mount" in a session of its own, with stdin
// and stdout on /dev/null and its log going to --log-file or to syslog
// (--syslog, the default here), so that nothing of mount(8)'s output stays
// open: "out=$(mount /srv/app/secrets)" returns at once. The daemon's stderr
// is a pipe to the helper, which shows what came through it when the
// daemon fails. Readiness is exact: the helper listens on a notification
// socket of its own, given to the daemon as NOTIFY_SOCKET, and returns 0 as
// soon as the daemon (that process, checked by its credentials) sends
// READY=1, which it does once the mount serves; 32 (mount failure) when the
// daemon exits first or does not serve within mount_timeout, after
// stopping it; 1 for a mistake in the options.
package fstab
