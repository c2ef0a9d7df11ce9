package cligen

import (
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// manSections are the sections secretsfs(1) has beyond what urfave/cli
// writes from the commands and flags: the environment variables (every
// flag's, taken from app, so the list never drifts from the flags), the
// settings files the systemd units read, mounting from /etc/fstab, and
// where to read more.
func manSections(app *cli.App) string {
	var b strings.Builder
	b.WriteString(`
.SH ENVIRONMENT
Every flag can be given as an environment variable instead, as below; a flag
on the command line wins over its variable. A repeatable flag takes
comma-separated values in its variable (\fBSECRETSFS_SECRET=prod/db,prod/api\fR),
a switch \fBtrue\fR or \fBfalse\fR.
`)
	for _, v := range envVars(app) {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", v.name, strings.Join(v.flags, ", "))
	}
	b.WriteString(`.PP
The AWS SDK's own variables work as well: \fBAWS_REGION\fR, \fBAWS_PROFILE\fR,
\fBAWS_ACCESS_KEY_ID\fR, \fBAWS_SECRET_ACCESS_KEY\fR, \fBAWS_SESSION_TOKEN\fR,
\fBAWS_ROLE_ARN\fR with \fBAWS_WEB_IDENTITY_TOKEN_FILE\fR (IRSA),
\fBAWS_CONTAINER_CREDENTIALS_FULL_URI\fR (EKS Pod Identity),
\fBAWS_ENDPOINT_URL\fR, \fBAWS_ENDPOINT_URL_SECRETS_MANAGER\fR,
\fBAWS_CONFIG_FILE\fR, \fBAWS_SHARED_CREDENTIALS_FILE\fR and
\fBAWS_EC2_METADATA_DISABLED\fR.

.SH FILES
.TP
\fB/etc/secretsfs/secretsfs.env\fR
Settings of \fBsecretsfs.service\fR: one \fIVARIABLE\fR=\fIvalue\fR per line,
the variables above, and \fBSECRETSFS_MOUNTPOINT\fR, the mount point
(default \fB/run/secretsfs/default\fR). Mode 0600: it may hold credentials.
.TP
\fB/etc/secretsfs/NAME.env\fR
Settings of \fBsecretsfs@NAME.service\fR, one file per mount, in the same
form (default mount point \fB/run/secretsfs/NAME\fR).

.SH MOUNTING FROM /etc/fstab
A line of type \fBfuse.secretsfs\fR in \fB/etc/fstab\fR mounts through the
\fBmount\fR(8) helper \fBmount.fuse.secretsfs\fR(8). Its options are the
flags of \fBsecretsfs mount\fR without the dashes (\fBrefresh-interval=5m\fR,
\fBallow_other\fR, \fBsecret=a,secret=b\fR), plus its own
\fBenv-file=\fR\fIPATH\fR (read the variables above from a file, e.g.
\fB/etc/secretsfs/secretsfs.env\fR), \fBlog-file=\fR\fIPATH\fR and
\fBmount-timeout=\fR\fISECONDS\fR:
.PP
.EX
secretsfs /srv/app/secrets fuse.secretsfs _netdev,nofail,allow_other,prefix=app/,env-file=/etc/secretsfs/secretsfs.env 0 0
.EE

.SH SEE ALSO
\fBmount.fuse.secretsfs\fR(8), \fBmount\fR(8), \fBfstab\fR(5),
\fBsystemd.exec\fR(5), \fBfusermount3\fR(1)
`)
	return b.String()
}

// envVar is an environment variable and the flags it sets.
type envVar struct {
	name  string
	flags []string // "--refresh-interval (mount, demo)"
}

// envVars are the environment variables of every visible command's flags,
// by name.
func envVars(app *cli.App) []envVar {
	type use struct {
		flag string
		cmds []string
	}
	byName := map[string][]*use{}
	add := func(cmd string, f cli.Flag) {
		df, ok := f.(cli.DocGenerationFlag)
		if !ok {
			return
		}
		flag := "\\-\\-" + strings.ReplaceAll(f.Names()[0], "-", "\\-")
		for _, v := range df.GetEnvVars() {
			var u *use
			for _, x := range byName[v] {
				if x.flag == flag {
					u = x
				}
			}
			if u == nil {
				u = &use{flag: flag}
				byName[v] = append(byName[v], u)
			}
			if cmd != "" {
				u.cmds = append(u.cmds, cmd)
			}
		}
	}
	for _, f := range app.Flags {
		add("", f)
	}
	for _, c := range app.Commands {
		if c.Hidden {
			continue
		}
		for _, f := range c.Flags {
			add(c.Name, f)
		}
	}
	out := make([]envVar, 0, len(byName))
	for name, uses := range byName {
		v := envVar{name: name}
		for _, u := range uses {
			s := u.flag
			if len(u.cmds) > 0 {
				s += " (" + strings.Join(u.cmds, ", ") + ")"
			}
			v.flags = append(v.flags, s)
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
