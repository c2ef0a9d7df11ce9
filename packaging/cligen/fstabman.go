package cligen

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/urfave/cli/v2"

	"github.com/secretsfs/secretsfs/packaging/fstab"
)

// fstabMan is the man page of the mount(8) helpers, mount.fuse.secretsfs(8)
// (mount.secretsfs(8) is a link to it): the fstab options come from the
// flags of app's "mount" command and from package fstab, so that the page
// lists exactly what the helper accepts.
func fstabMan(app *cli.App) (string, error) {
	mnt := app.Command("mount")
	if mnt == nil {
		return "", errors.New("the application has no mount command")
	}
	helper := fstab.Names()[0]
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("%% %s 8", helper)
	p("")
	p("# NAME")
	p("")
	p("%s - mount %s from /etc/fstab", strings.Join(fstab.Names(), ", "), app.Name)
	p("")
	p("# SYNOPSIS")
	p("")
	p("**%s** *SOURCE* *MOUNTPOINT* [**-sfnv**] [**-o** *OPTIONS*] [**-t** *TYPE*]", helper)
	p("")
	p("In /etc/fstab:")
	p("")
	p("    secretsfs  /srv/app/secrets  fuse.secretsfs  allow_other,prefix=app/,env_file=/etc/secretsfs/secretsfs.env  0 0")
	p("")
	p("# DESCRIPTION")
	p("")
	p("**mount**(8) runs **%s** for file systems of type **fuse.secretsfs**, and **mount.secretsfs** for type "+
		"**secretsfs**; both are links to the **%s** binary, which acts as the helper under these names. "+
		"The helper starts **%s mount** (see **%s**(1)) on *MOUNTPOINT* in a session of its own, with none of "+
		"mount's input or output, and returns as soon as the mount serves (the daemon reports READY=1 on a "+
		"notification socket of the helper's), so that a caller capturing mount's output is not kept waiting. "+
		"If the daemon fails first, or does not serve within **mount_timeout**, the helper stops it, prints its "+
		"error and exits 32.", helper, app.Name, app.Name, app.Name)
	p("")
	p("The daemon's log goes to syslog (**--syslog**: the journal under systemd, **journalctl -t %s**) unless "+
		"**log_file**= names a file; without a system log (no /dev/log) it is lost unless **log_file**= is given.", app.Name)
	p("")
	p("*SOURCE*, any word such as **secretsfs** or **none**, becomes the file system's name in /proc/mounts "+
		"(**--fsname**): by it **mount -a** knows that the entry is mounted and leaves it alone. Mounting a "+
		"directory that a running %s serves fails with \"already mounted\"; a stale mount left by a killed "+
		"daemon is replaced. **umount** *MOUNTPOINT* unmounts, and the daemon exits.", app.Name)
	p("")
	p("# OPTIONS")
	p("")
	for _, o := range []struct{ flag, usage string }{
		{"**-o** *OPTIONS*", "comma-separated options, below; repeatable"},
		{"**-s**", "sloppy: ignore unknown options instead of failing"},
		{"**-f**", "fake: check the options and the environment file, start nothing"},
		{"**-v**", "verbose: show the daemon's command line (without the value of on_change_command) and what it wrote before serving"},
		{"**-n**, **-r**", "accepted and ignored: there is no mtab to write, and the file system is always read-only"},
		{"**-t** *TYPE*", "accepted and ignored"},
	} {
		p("%s", o.flag)
		p(": %s", o.usage)
		p("")
	}
	p("# FSTAB OPTIONS")
	p("")
	p("The options are the flags of **%s mount** without the leading dashes, written with \"\\_\" or \"-\" "+
		"(**refresh_interval=5m** or **refresh-interval=5m**); a repeatable flag is given once per value "+
		"(**secret=a,secret=b**), a switch alone or as *NAME*=true or *NAME*=false. In /etc/fstab a space in a "+
		"value is written \\\\040, and a value holding a comma is put in double quotes: "+
		"**on_change_command=\"logger\\\\040rotated:\\\\040db,api\"**.", app.Name)
	p("")
	p("## Options of the helper")
	p("")
	for _, o := range fstab.OwnOptions() {
		p("**%s**=*%s*", o.Name, o.Value)
		p(": %s", escapeMD(o.Usage))
		p("")
	}
	p("## Flags of %s mount", app.Name)
	p("")
	for _, f := range mnt.Flags {
		term, usage := flagOption(f)
		p("%s", term)
		p(": %s", usage)
		p("")
	}
	p("## Generic options")
	p("")
	p("Accepted and ignored (mount(8) and systemd act on some of them before the helper runs; %s is read-only, "+
		"without set-user-id files, devices or access times): %s. **remount** is refused.",
		app.Name, escapeMD(strings.Join(fstab.IgnoredOptions(), ", ")))
	p("")
	p("# ENVIRONMENT FILE")
	p("")
	p("**env_file**=*PATH* puts variables into the daemon's environment: AWS_REGION, AWS credentials, the "+
		"SECRETSFS\\_*FLAG* variables of **%s**(1); the options win over them. The file is read as data, never run, "+
		"with the rules **systemd.exec**(5) gives for EnvironmentFile=, so that one file serves the systemd units "+
		"and /etc/fstab alike:", app.Name)
	p("")
	for _, rule := range []string{
		"one *KEY*=*VALUE* assignment a line; empty lines and lines without \"=\" are ignored;",
		"a line starting with \"#\" or \";\" is a comment; there are no comments after a value: *A=1 # one* sets A to \"1 # one\";",
		"whitespace around the name and the value is dropped, whitespace inside the value kept: " +
			"*SECRETSFS_ON_CHANGE_COMMAND=logger secret rotated*;",
		"unquoted, a backslash keeps the next character, and a backslash at the end of a line joins the next line;",
		"'...' is taken verbatim, newlines included; \"...\" may span lines, and a backslash in it keeps one of " +
			"\" \\\\ \\` $ or drops a newline;",
		"nothing is expanded: $HOME and $(cmd) stay as written; a later assignment of a name wins.",
	} {
		p("- %s", rule)
	}
	p("")
	p("Where systemd would ignore a line (a name that is not letters, digits and \"\\_\", or starts with a digit, " +
		"such as *export A=1*) or refuse the file (not UTF-8), the helper fails, naming the file and line.")
	p("")
	p("# EXIT STATUS")
	p("")
	p("**0**")
	p(": the mount serves")
	p("")
	p("**1**")
	p(": a wrong invocation: an unknown or malformed option, an environment file that cannot be read")
	p("")
	p("**32**")
	p(": the mount failed: the daemon refused its settings or the mount point, exited, or did not serve within mount_timeout")
	p("")
	p("# EXAMPLES")
	p("")
	p("Group 1000 reads the secrets under app/ (directories need dir_mode=0550 for the group to enter them):")
	p("")
	p("    secretsfs  /srv/app/secrets  fuse.secretsfs  _netdev,nofail,allow_other,uid=1000,gid=1000,file_mode=0440,dir_mode=0550,prefix=app/,env_file=/etc/secretsfs/secretsfs.env  0 0")
	p("")
	p("    sudo mount /srv/app/secrets && sudo mount -a    # the second leaves it alone")
	p("")
	p("# FILES")
	p("")
	p("/etc/secretsfs/secretsfs.env")
	p(": the settings file the package installs, also read by secretsfs.service")
	p("")
	p("# SEE ALSO")
	p("")
	p("**%s**(1), **mount**(8), **fstab**(5), **systemd.exec**(5), **systemd.mount**(5)", app.Name)
	return string(md2man.Render([]byte(b.String()))), nil
}

// flagOption is a flag as an fstab option: the term (name with "_" and a
// placeholder for its value) and its description with default and
// environment variable.
func flagOption(f cli.Flag) (term, usage string) {
	name := strings.ReplaceAll(f.Names()[0], "-", "_")
	doc, _ := f.(cli.DocGenerationFlag)
	placeholder, text := "", ""
	if doc != nil {
		placeholder, text = unquoteUsage(doc.GetUsage())
	}
	term = "**" + escapeMD(name) + "**"
	if doc != nil && doc.TakesValue() {
		if placeholder == "" {
			placeholder = valueName(f)
		}
		term += "=*" + escapeMD(placeholder) + "*"
	}
	usage = escapeMD(text)
	if doc != nil {
		if def := doc.GetDefaultText(); def != "" && def != "false" && def != `""` {
			usage += " (default: " + escapeMD(strings.Trim(def, `"`)) + ")"
		}
		if env := doc.GetEnvVars(); len(env) > 0 {
			usage += "; variable " + escapeMD(strings.Join(env, ", "))
		}
	}
	if _, list := f.(*cli.StringSliceFlag); list && !strings.Contains(text, "repeatable") {
		usage += "; repeatable"
	}
	return term, usage
}

// unquoteUsage takes the placeholder out of a flag's usage, as urfave/cli
// does for its help: the first `word` in back quotes, which stays in the
// text without them.
func unquoteUsage(usage string) (placeholder, text string) {
	before, rest, ok := strings.Cut(usage, "`")
	if !ok {
		return "", usage
	}
	name, after, ok := strings.Cut(rest, "`")
	if !ok {
		return "", usage
	}
	return name, before + name + after
}

// valueName is the placeholder of a flag whose usage names none.
func valueName(f cli.Flag) string {
	switch f.(type) {
	case *cli.DurationFlag:
		return "DURATION"
	case *cli.IntFlag, *cli.UintFlag:
		return "N"
	case *cli.Float64Flag:
		return "NUMBER"
	}
	return "VALUE"
}

// escapeMD keeps text literal in Markdown.
func escapeMD(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "<", `\<`, "[", `\[`).Replace(s)
}
