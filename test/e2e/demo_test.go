package e2e

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestDemoServesSampleSecretsAndRotates runs `secretsfs demo` as a user
// would: it needs no AWS account and ignores the user's AWS settings, serves
// the sample secrets, prints what to try, and rotates demo/db on schedule.
func TestDemoServesSampleSecretsAndRotates(t *testing.T) {
	testutil.RequireFUSE(t)
	mnt := t.TempDir()
	// A profile that does not exist: the demo must not read it.
	env := testutil.FakeAWSEnv("AWS_PROFILE=secretsfs-no-such-profile", "AWS_ENDPOINT_URL=http://127.0.0.1:1")
	argv := []string{binary, "demo", "--rotate-interval", "1s", "--refresh-interval", "1s", mnt}
	tips := func(d *testutil.Daemon) bool {
		return strings.Contains(d.Stdout.String(), "Press Ctrl-C to unmount and exit.")
	}
	d := testutil.StartDaemon(t, "secretsfs demo", mnt, argv, env, tips)

	out := d.Stdout.String()
	for _, want := range []string{"secretsfs: serving 4 secrets at " + mnt + " (per-open mode)", "demo/db is rotated every 1s", "cat " + mnt + "/demo/db/password", "inotifywait -m " + mnt + "/demo/db/password"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if got := mustRead(t, mnt+"/demo/api-key/AWSPREVIOUS"); got != "demo-key-0001" {
		t.Errorf("demo/api-key/AWSPREVIOUS = %q", got)
	}
	if got, err := os.ReadFile(mnt + "/demo/tls/cert/AWSCURRENT"); err != nil || !bytes.HasPrefix(got, []byte{0x30, 0x82}) {
		t.Errorf("demo/tls/cert/AWSCURRENT = %x, %v; want the binary sample", got, err)
	}
	first := mustRead(t, mnt+"/demo/db/password")
	if first != "correct-horse-battery-staple" {
		t.Fatalf("demo/db/password = %q", first)
	}
	events := testutil.Watch(t, mnt+"/demo/db/password", testutil.ChangeEvents)
	eventually(t, 20*time.Second, "demo/db's password to rotate", func() bool {
		got, err := read(mnt + "/demo/db/password")
		return err == nil && got != first
	})
	// What the printed inotifywait tip shows.
	waitWritten(events, 2*time.Second)
	if !strings.Contains(d.Stdout.String(), "demo: rotated demo/db to version ") {
		t.Errorf("stdout does not report the rotation:\n%s", d.Stdout)
	}
	// The cleanup checks that SIGTERM unmounts and exits 0.
}
