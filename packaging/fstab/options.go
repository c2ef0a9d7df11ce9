package fstab

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// Exit statuses, mount(8)'s: 1 for a wrong invocation, 32 for a failed
// mount.
const (
	exitUsage   = 1
	exitFailure = 32
)

// Names are the program names of the helper: mount(8) runs
// /sbin/mount.TYPE, for types fuse.secretsfs and secretsfs.
func Names() []string { return []string{"mount.fuse.secretsfs", "mount.secretsfs"} }

// IsHelper reports whether a program run as argv0 is the helper.
func IsHelper(argv0 string) bool { return slices.Contains(Names(), filepath.Base(argv0)) }

// DefaultMountTimeout is how long the helper waits for the mount to serve
// unless mount_timeout= says otherwise.
const DefaultMountTimeout = 60 * time.Second

// Option is one option of the helper for the man page: its name, the
// placeholder of its value ("" for a switch) and what it does.
type Option struct {
	Name, Value, Usage string
}

// OwnOptions are the options of the helper itself, not passed to the
// daemon.
func OwnOptions() []Option {
	return []Option{
		{"env_file", "PATH", "read the daemon's environment (AWS_REGION, AWS credentials, SECRETSFS_* settings) from PATH: " +
			"KEY=VALUE lines with the syntax of systemd's EnvironmentFile=, read as data (see ENVIRONMENT FILE); " +
			"repeatable, a later file wins; the options win over the file"},
		{"mount_timeout", "SECONDS", fmt.Sprintf("how long to wait for the mount to serve, in seconds or as a duration such as 2m "+
			"(default %d); then the daemon is stopped and the mount fails", int(DefaultMountTimeout/time.Second))},
	}
}

// ignored are generic mount options that mean nothing to secretsfs, which
// is read-only, without set-user-id files or devices, and has no atime;
// mount(8) and systemd act on some of them (noauto, nofail, _netdev...)
// before the helper runs. Names with "_" as "-".
var ignored = []string{
	"defaults", "rw", "ro", "auto", "noauto", "nofail", "-netdev", "user", "users", "nouser", "owner", "group",
	"suid", "nosuid", "dev", "nodev", "exec", "noexec", "async", "sync", "dirsync", "atime", "noatime",
	"diratime", "nodiratime", "relatime", "norelatime", "strictatime", "nostrictatime", "lazytime", "nolazytime",
	"iversion", "noiversion", "mand", "nomand", "silent", "loud",
	"default-permissions", // implied by allow_other
}

// IgnoredOptions lists the generic options the helper accepts and ignores,
// for the man page.
func IgnoredOptions() []string {
	out := make([]string, len(ignored))
	for i, o := range ignored {
		out[i] = strings.ReplaceAll(o, "-", "_")
	}
	return append(out, "comment=...", "x-*")
}

// invocation is what mount(8) asked for.
type invocation struct {
	source, dir           string
	options               []string // NAME or NAME=VALUE, in order
	sloppy, fake, verbose bool
}

// parseArgs reads mount(8)'s arguments to a helper (after the program
// name): SOURCE MOUNTPOINT [-sfnvr] [-o OPTIONS] [-t TYPE].
func parseArgs(args []string) (invocation, error) {
	var inv invocation
	var positional []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "-t" || a == "-N":
			if i+1 >= len(args) {
				return inv, fmt.Errorf("%s needs a value", a)
			}
			i++
			if err := inv.flag(a[1], args[i]); err != nil {
				return inv, err
			}
		case strings.HasPrefix(a, "-o") || strings.HasPrefix(a, "-t") || strings.HasPrefix(a, "-N"):
			if err := inv.flag(a[1], a[2:]); err != nil {
				return inv, err
			}
		case len(a) > 1 && a[0] == '-':
			for _, c := range a[1:] {
				switch c {
				case 's':
					inv.sloppy = true
				case 'f':
					inv.fake = true
				case 'v':
					inv.verbose = true
				case 'n', 'r': // no mtab (there is none); read-only (always)
				default:
					return inv, fmt.Errorf("unknown flag -%c in %s", c, a)
				}
			}
		default:
			positional = append(positional, a)
		}
	}
	if len(positional) != 2 {
		return inv, fmt.Errorf("want SOURCE and MOUNTPOINT, got %d arguments", len(positional))
	}
	inv.source, inv.dir = positional[0], positional[1]
	return inv, nil
}

// flag takes the value of -o, -t or -N.
func (inv *invocation) flag(c byte, value string) error {
	switch c {
	case 'o':
		inv.options = append(inv.options, splitOptions(value)...)
	case 'N':
		return errors.New("-N (mounting in another namespace) is not supported; run mount inside that namespace (nsenter)")
	}
	return nil // -t TYPE: the type is the helper's own
}

// splitOptions splits a comma-separated option string, as libmount does:
// a comma between double quotes does not separate, and the quotes around a
// value are dropped (on_change_command="logger a,b"). In /etc/fstab a
// space is written \040.
func splitOptions(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
			cur.WriteByte(c)
		case c == ',' && !quoted:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	out = append(out, cur.String())
	var opts []string
	for _, o := range out {
		if o == "" {
			continue
		}
		if name, value, ok := strings.Cut(o, "="); ok && len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			o = name + "=" + value[1:len(value)-1]
		}
		opts = append(opts, o)
	}
	return opts
}

// plan is what the helper does for an invocation.
type plan struct {
	args     []string // flags of "secretsfs mount", before MOUNTPOINT
	envFiles []string
	timeout  time.Duration
	ignored  []string // unknown options ignored under -s
}

// makePlan turns the options into the daemon's flags, looking each name up
// among the flags of "secretsfs mount".
func makePlan(inv invocation, flags []cli.Flag) (plan, error) {
	p := plan{timeout: DefaultMountTimeout}
	byName := map[string]cli.Flag{}
	for _, f := range flags {
		for _, n := range f.Names() {
			byName[n] = f
		}
	}
	logs, named := false, false
	var errs []error
	for _, o := range inv.options {
		name, value, hasValue := strings.Cut(o, "=")
		key := strings.ReplaceAll(name, "_", "-")
		switch {
		case slices.Contains(ignored, key) || key == "comment" || strings.HasPrefix(key, "x-"):
			continue
		case key == "remount":
			errs = append(errs, errors.New("remount: secretsfs cannot change the options of a mounted filesystem; umount it and mount it again"))
			continue
		case key == "env-file":
			if !hasValue || value == "" {
				errs = append(errs, fmt.Errorf("option %s needs a file (%s=/etc/secretsfs/secretsfs.env)", name, name))
				continue
			}
			p.envFiles = append(p.envFiles, value)
			continue
		case key == "mount-timeout":
			d, err := parseTimeout(value)
			if err != nil {
				errs = append(errs, fmt.Errorf("option %s=%s: %v", name, value, err))
				continue
			}
			p.timeout = d
			continue
		}
		f, ok := byName[key]
		if !ok {
			if inv.sloppy {
				p.ignored = append(p.ignored, o)
				continue
			}
			errs = append(errs, fmt.Errorf("unknown option %s; the options are the flags of secretsfs mount without dashes (see man mount.fuse.secretsfs; mount -s ignores unknown options)", o))
			continue
		}
		flag := f.Names()[0]
		if flag == "audit-log" && value == "-" {
			errs = append(errs, fmt.Errorf("option %s=-: the daemon's stderr is closed once mount returns; give a file (%s=/var/log/secretsfs/audit.log)", name, name))
			continue
		}
		logs = logs || flag == "log-file" || flag == "syslog"
		named = named || flag == "fsname"
		if _, isBool := f.(*cli.BoolFlag); isBool {
			if !hasValue {
				p.args = append(p.args, "--"+flag)
				continue
			}
			if _, err := strconv.ParseBool(value); err != nil {
				errs = append(errs, fmt.Errorf("option %s=%s: give %s alone, or %s=true or %s=false", name, value, name, name, name))
				continue
			}
		} else if !hasValue {
			errs = append(errs, fmt.Errorf("option %s needs a value (%s=...)", name, name))
			continue
		}
		p.args = append(p.args, "--"+flag+"="+value)
	}
	if !named && inv.source != "" {
		// The entry's first field becomes the source in /proc/mounts:
		// "mount -a" then finds the entry mounted and skips it.
		p.args = append(p.args, "--fsname="+inv.source)
	}
	if !logs {
		// Nothing of mount(8)'s output stays with the daemon: its log goes
		// to syslog (the journal) unless log_file= names a file.
		p.args = append(p.args, "--syslog")
	}
	return p, errors.Join(errs...)
}

// parseTimeout reads mount_timeout: whole seconds, or a Go duration.
func parseTimeout(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if n, nerr := strconv.Atoi(s); nerr == nil {
		d, err = time.Duration(n)*time.Second, nil
	}
	if err != nil || d <= 0 {
		return 0, errors.New("give a positive number of seconds, such as 60, or a duration, such as 2m")
	}
	return d, nil
}
