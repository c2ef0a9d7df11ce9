package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// childModeEnv makes the test binary act as a small reader process, so tests
// can read through the mount as another user or be interrupted by a signal,
// without the test process itself touching its daemon's mount in those ways.
const childModeEnv = "SECRETSFS_E2E_CHILD"

// childMain runs a child mode and prints "ok <bytes>" or "errno <n>".
//   - "read PATH": open and read PATH with raw system calls.
//   - "interruptible PATH": as read, but SIGUSR1 interrupts the read
//     instead of killing the process; prints "ready TID" first, the id of
//     the thread that will read.
//   - "refresh MILLIS PATH": reads user.secretsfs.refresh of PATH over and
//     over for MILLIS ms and prints "refreshes N failed M" instead.
//   - "mmap-shared PATH", "mmap-private PATH": open PATH, map fstat's size
//     of it read-only (MAP_SHARED or MAP_PRIVATE) and print "ok <content in
//     hex>".
func childMain(mode string) int {
	verb, path, _ := strings.Cut(mode, " ")
	if verb == "refresh" {
		return refreshLoop(path)
	}
	if verb == "mmap-shared" || verb == "mmap-private" {
		return childMmap(path, map[string]int{"mmap-shared": syscall.MAP_SHARED, "mmap-private": syscall.MAP_PRIVATE}[verb])
	}
	if verb == "interruptible" {
		// A signal sent to the process may land on any of its threads;
		// say which thread reads, so that the signal can be sent to it.
		runtime.LockOSThread()
		signal.Notify(make(chan os.Signal, 1), syscall.SIGUSR1)
		fmt.Printf("ready %d\n", syscall.Gettid())
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
	if err != nil {
		fmt.Printf("errno %d\n", err.(syscall.Errno))
		return 0
	}
	defer syscall.Close(fd)
	buf := make([]byte, 70000)
	n, err := syscall.Read(fd, buf)
	if err != nil {
		fmt.Printf("errno %d\n", err.(syscall.Errno))
		return 0
	}
	fmt.Printf("ok %d\n", n)
	return 0
}

// refreshLoop runs the "refresh" child mode on "MILLIS PATH".
func refreshLoop(arg string) int {
	ms, path, _ := strings.Cut(arg, " ")
	n, err := strconv.Atoi(ms)
	if err != nil {
		fmt.Println(err)
		return 2
	}
	buf := make([]byte, 256)
	calls, failed := 0, 0
	for end := time.Now().Add(time.Duration(n) * time.Millisecond); time.Now().Before(end); calls++ {
		if _, err := unix.Getxattr(path, "user.secretsfs.refresh", buf); err != nil {
			failed++
		}
	}
	fmt.Printf("refreshes %d failed %d\n", calls, failed)
	return 0
}

// childMmap maps path whole with the given flags and prints its content.
func childMmap(path string, flags int) int {
	fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
	if err != nil {
		fmt.Printf("errno %d\n", err.(syscall.Errno))
		return 0
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		fmt.Printf("errno %d\n", err.(syscall.Errno))
		return 0
	}
	m, err := syscall.Mmap(fd, 0, int(st.Size), syscall.PROT_READ, flags)
	if err != nil {
		fmt.Printf("errno %d\n", err.(syscall.Errno))
		return 0
	}
	fmt.Printf("ok %x\n", m)
	syscall.Munmap(m)
	return 0
}

// childCmd prepares the test binary in a child mode.
func childCmd(mode string) *exec.Cmd {
	cmd := exec.Command(testBinary, "-test.run=^$")
	cmd.Env = append(os.Environ(), childModeEnv+"="+mode)
	return cmd
}

// readAs reads path in a child process running as uid:gid and returns the
// errno (0 on success).
func readAs(t *testing.T, uid, gid uint32, path string) syscall.Errno {
	t.Helper()
	cmd := childCmd("read " + path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reader as %d: %v\n%s", uid, err, out)
	}
	return parseChild(t, string(out))
}

func parseChild(t *testing.T, out string) syscall.Errno {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "errno" {
			n, _ := strconv.Atoi(f[1])
			return syscall.Errno(n)
		}
		if len(f) == 2 && f[0] == "ok" {
			return 0
		}
	}
	t.Fatalf("unexpected child output %q", out)
	return 0
}
