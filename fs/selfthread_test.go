package fs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// childEnv makes the test binary a child that mounts a filesystem (see
// TestMain).
const childEnv = "SECRETSFS_FS_CHILD"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(selfWriteChild(dir))
	}
	os.Exit(m.Run())
}

// blockWrites is an Observer that, once armed, keeps the first WRITE or
// SETATTR (only the daemon's own writer makes them) from being answered,
// and says so on stdout.
type blockWrites struct{ armed atomic.Bool }

func (b *blockWrites) Op(op string, _ syscall.Errno) {
	if (op == "write" || op == "setattr") && b.armed.CompareAndSwap(true, false) {
		fmt.Println("blocked")
		select {}
	}
}

// selfWriteChild mounts secret db on dir with a blockWrites observer,
// prints "mounted CONN", and at the line "rotate" on stdin arms the
// observer and rotates db, so that the writer's write of a file the kernel
// holds waits for an answer that never comes.
func selfWriteChild(dir string) int {
	s := newFakeStore()
	s.put("db", "v1")
	obs := &blockWrites{}
	srv, err := Mount(dir, Options{Store: s, Catalog: &fakeCatalog{refs: refs("db")}, Clock: cachetest.NewClock(testEpoch), Observer: obs})
	if err != nil {
		fmt.Println("mount:", err)
		return 2
	}
	fmt.Println("mounted", srv.conn)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "rotate" {
			obs.armed.Store(true)
			s.put("db", "v2")
		}
	}
	return 0
}

// TestIssue14_35_Kill9WhileTheWriterWaitsOnItsOwnMount: a daemon killed
// (kill -9, the OOM killer) while its writer waits for the answer to a
// request on its own mount (raising a change event) exits, and its mount
// answers ENOTCONN. The writer's thread used to hold the process's
// descriptors, /dev/fuse among them, whose closing is what ends the
// connection and so that wait: the process could never exit.
func TestIssue14_35_Kill9WhileTheWriterWaitsOnItsOwnMount(t *testing.T) {
	testutil.RequireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("the writer writes through the root layout's view")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	exited := make(chan struct{})
	stdin, lines := testutil.StartPiped(t, cmd)
	go func() {
		cmd.Wait()
		close(exited)
	}()
	line := func() string {
		if !lines.Scan() {
			t.Fatalf("the child printed nothing more: %v", lines.Err())
		}
		return lines.Text()
	}
	first := line()
	conn, err := strconv.ParseUint(strings.TrimPrefix(first, "mounted "), 10, 32)
	if err != nil {
		t.Fatalf("the child: %q", first)
	}
	t.Cleanup(func() {
		select {
		case <-exited:
		default: // stuck: end its connection, which lets it exit
			abortConnection(uint32(conn))
			<-exited
		}
		unix.Unmount(dir, unix.MNT_DETACH)
	})
	// The kernel holds the file: the writer writes it at a change.
	held, err := os.Open(filepath.Join(dir, "db/AWSCURRENT"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	fmt.Fprintln(stdin, "rotate")
	if got := line(); got != "blocked" {
		t.Fatalf("the child: %q", got)
	}
	cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(20 * time.Second): // bounds a hang, not a schedule
		t.Fatal("the daemon killed while its writer waited on its own mount did not exit within 20 s")
	}
	if _, err := held.Read(make([]byte, 16)); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("read of a file of the dead daemon's mount: %v, want ENOTCONN", err)
	}
}
