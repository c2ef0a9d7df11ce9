package mount

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// notifySocket listens on a unixgram socket and points NOTIFY_SOCKET at it.
func notifySocket(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

// receive returns the next datagram, failing after a deadline.
func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestSdNotifyWithoutSocketDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	if err := sdNotify("READY=1"); err != nil {
		t.Fatalf("sdNotify without NOTIFY_SOCKET = %v, want nil", err)
	}
}

func TestSdNotifySendsOneDatagram(t *testing.T) {
	for _, tc := range []struct{ kind, name string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@secretsfs-test-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000000")},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			conn := notifySocket(t, tc.name)
			if err := sdNotify("READY=1\nSTATUS=x"); err != nil {
				t.Fatal(err)
			}
			if got := receive(t, conn); got != "READY=1\nSTATUS=x" {
				t.Fatalf("datagram = %q", got)
			}
		})
	}
}

func TestSdNotifyReportsAMissingSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if err := sdNotify("READY=1"); err == nil {
		t.Fatal("sdNotify to a missing socket = nil, want an error")
	}
}

// Run sends READY=1 only once it serves, and STOPPING=1 when it shuts down.
func TestRunNotifiesReadyAndStopping(t *testing.T) {
	f := newEmu(t)
	f.create(t, "app/db", "v")
	dir := t.TempDir()
	cfg := emuConfig(t, f, dir)
	conn := notifySocket(t, filepath.Join(t.TempDir(), "notify"))
	srv := &fakeServer{}
	stdout, _, stop := runInBackground(t, cfg, srv.deps(make(chan os.Signal, 1)))

	ready := receive(t, conn)
	if stdout.String() == "" {
		t.Fatalf("READY=1 arrived before the serving line: %q", ready)
	}
	if ready != "READY=1\nSTATUS=serving 1 secrets at "+dir {
		t.Fatalf("ready notification = %q", ready)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, conn); !strings.HasPrefix(got, "STOPPING=1\n") {
		t.Fatalf("stop notification = %q, want STOPPING=1", got)
	}
}
