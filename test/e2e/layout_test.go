package e2e

import (
	"slices"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// seedLayout creates secrets covering the layout's cases.
func seedLayout(w *world) (labelled string) {
	w.createString("app/db", `{"username":"app","password":"pw-1","port":5432,"AWSCURRENT":"hidden","replica":"hidden by the child"}`)
	w.createString("app/db/replica", "replica-dsn")
	w.createString("app/api-key", "key-123")
	w.createBinary("app/cert", []byte{0x30, 0x82, 0x00, 0xff, 0x00})
	vid := w.createString("app/flags", "blue")
	if _, err := w.sm.UpdateSecretVersionStage(w.ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String("app/flags"), VersionStage: aws.String("BLUE"), MoveToVersionId: aws.String(vid),
	}); err != nil {
		w.t.Fatal(err)
	}
	return vid
}

func TestLayout(t *testing.T) {
	w := newWorld(t)
	flagsVID := seedLayout(w)
	d := w.startDaemon("--uid", "1234", "--gid", "4321")

	for dir, want := range map[string][]string{
		"":               {"app/"},
		"app":            {"api-key/", "cert/", "db/", "flags/"},
		"app/db":         {"AWSCURRENT", "password", "port", "replica/", "username"},
		"app/db/replica": {"AWSCURRENT"},
		"app/flags":      {"AWSCURRENT", "BLUE"},
	} {
		if got := testutil.ListDir(t, d.path(dir)); !slices.Equal(got, want) {
			t.Errorf("ls %q = %v, want %v", dir, got, want)
		}
	}
	files := map[string]string{
		"app/db/username":           "app",
		"app/db/password":           "pw-1",
		"app/db/port":               "5432",
		"app/db/replica/AWSCURRENT": "replica-dsn",
		"app/api-key/AWSCURRENT":    "key-123",
		"app/cert/AWSCURRENT":       "\x30\x82\x00\xff\x00",
		"app/flags/BLUE":            "blue",
	}
	for f, want := range files {
		if got := mustRead(t, d.path(f)); got != want {
			t.Errorf("cat %s = %q, want %q", f, got, want)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(d.path(f), &st); err != nil {
			t.Fatal(err)
		}
		if st.Size != int64(len(want)) || st.Mode != syscall.S_IFREG|0o400 || st.Uid != 1234 || st.Gid != 4321 {
			t.Errorf("stat %s: size %d mode %o owner %d:%d", f, st.Size, st.Mode, st.Uid, st.Gid)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(d.path("app/db"), &st); err != nil || st.Mode != syscall.S_IFDIR|0o500 || st.Uid != 1234 {
		t.Errorf("stat app/db: mode %o uid %d err %v", st.Mode, st.Uid, err)
	}

	desc, err := w.sm.DescribeSecret(w.ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/flags")})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	xattrs := map[string]string{
		"user.secretsfs.version_id": flagsVID,
		"user.secretsfs.stages":     "AWSCURRENT,BLUE",
		"user.secretsfs.arn":        aws.ToString(desc.ARN),
		"user.secretsfs.stale":      "false",
	}
	for name, want := range xattrs {
		n, err := unix.Getxattr(d.path("app/flags/BLUE"), name, buf)
		if err != nil || string(buf[:n]) != want {
			t.Errorf("getxattr %s = %q, %v; want %q", name, buf[:max(n, 0)], err, want)
		}
	}
	n, err := unix.Getxattr(d.path("app/flags/BLUE"), "user.secretsfs.fetched_at", buf)
	if err != nil || len(buf[:n]) != len("2006-01-02T15:04:05Z") {
		t.Errorf("fetched_at = %q, %v", buf[:max(n, 0)], err)
	}
	names := testutil.ListXattr(t, d.path("app/db/password"))
	want := []string{"user.secretsfs.arn", "user.secretsfs.fetched_at", "user.secretsfs.stages", "user.secretsfs.stale", "user.secretsfs.version_id"}
	if !slices.Equal(names, want) {
		t.Errorf("listxattr = %v", names)
	}
}
