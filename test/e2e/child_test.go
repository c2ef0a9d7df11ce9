package e2e

import (
	"bufio"
	"errors"
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

	"github.com/secretsfs/secretsfs/test/testutil"
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
//   - "hold PATH": open PATH, print "ready", wait for a line on stdin, then
//     read the open file from its start and print "ok <content in hex>".
//   - "writes FILE DIR": try every kind of write on FILE, and the ones that
//     make or remove a name in DIR (none if DIR is "-"), and print
//     "write <what> <errno>" for each (errno 0: it succeeded).
//   - "watch MILLIS PATH": watch PATH with inotify (the change events),
//     print "ready", then "event <mask>" for each event until IN_CLOSE_WRITE
//     or MILLIS ms have passed; on IN_CLOSE_WRITE read PATH and print
//     "read <stat size> <content in hex>".
//   - "container SRC DST [SRC DST...]": act as a container runtime does for a
//     container's volumes with mountPropagation HostToContainer: bind each
//     SRC onto DST (made first) in this process's mount namespace, which
//     must be its own (unshare --mount), and make them slaves of the
//     host's mounts (rslave); print "ready", then for each line "read PATH"
//     on stdin print "ok <content in hex>" or "errno <n>", until stdin ends.
func childMain(mode string) int {
	verb, path, _ := strings.Cut(mode, " ")
	switch verb {
	case "refresh":
		return refreshLoop(path)
	case "hold":
		return childHold(path)
	case "writes":
		return childWrites(path)
	case "watch":
		return childWatch(path)
	case "container":
		return childContainer(path)
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

// childHold runs the "hold" child mode.
func childHold(path string) int {
	fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
	if err != nil {
		fmt.Printf("errno %d\n", err.(syscall.Errno))
		return 0
	}
	defer syscall.Close(fd)
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Println("no go-ahead:", err)
		return 2
	}
	buf := make([]byte, 70000)
	n, err := syscall.Pread(fd, buf, 0)
	if err != nil {
		fmt.Printf("errno %d\n", err.(syscall.Errno))
		return 0
	}
	fmt.Printf("ok %x\n", buf[:n])
	return 0
}

// childWrites runs the "writes" child mode on "FILE DIR".
func childWrites(arg string) int {
	file, dir, _ := strings.Cut(arg, " ")
	// An open for writing that succeeds (a non-root mount in kernel-cache
	// mode, where the kernel no longer asks the daemon about opens) is
	// followed by a write through it: what it gives is the answer.
	openAs := func(flags int) func() error {
		return func() error {
			fd, err := syscall.Open(file, flags, 0)
			if err != nil {
				return err
			}
			defer syscall.Close(fd)
			if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
				_, err = syscall.Pwrite(fd, []byte("x"), 0)
			}
			return err
		}
	}
	type write struct {
		what string
		do   func() error
	}
	writes := []write{
		{"open-O_WRONLY+write", openAs(syscall.O_WRONLY)},
		{"open-O_RDWR+write", openAs(syscall.O_RDWR)},
		{"open-O_WRONLY|O_TRUNC+write", openAs(syscall.O_WRONLY | syscall.O_TRUNC)},
		{"open-O_RDONLY|O_TRUNC", openAs(syscall.O_RDONLY | syscall.O_TRUNC)},
		{"truncate", func() error { return syscall.Truncate(file, 0) }},
	}
	if dir != "-" {
		writes = append(writes,
			write{"creat", func() error {
				fd, err := syscall.Creat(dir+"/new-file", 0o600)
				if err == nil {
					syscall.Close(fd)
				}
				return err
			}},
			write{"mkdir", func() error { return syscall.Mkdir(dir+"/new-dir", 0o700) }},
			write{"unlink", func() error { return syscall.Unlink(file) }},
			write{"rename", func() error { return syscall.Rename(file, dir+"/renamed") }},
		)
	}
	for _, w := range writes {
		errno := syscall.Errno(0)
		err := w.do()
		// A request the daemon is serving is interrupted by a signal to
		// the caller (the Go runtime's preemption): EINTR, as from any
		// slow device; try again, as os does.
		for err == syscall.EINTR {
			err = w.do()
		}
		if err != nil {
			errno = err.(syscall.Errno)
		}
		fmt.Printf("write %s %d\n", w.what, errno)
	}
	return 0
}

// childReporter reports a child's failure on its output and ends it.
type childReporter struct{}

func (childReporter) Helper() {}

func (childReporter) Fatalf(format string, args ...any) {
	fmt.Printf("fatal "+format+"\n", args...)
	os.Exit(1)
}

// childWatch runs the "watch" child mode on "MILLIS PATH".
func childWatch(arg string) int {
	ms, path, _ := strings.Cut(arg, " ")
	n, err := strconv.Atoi(ms)
	if err != nil {
		fmt.Println(err)
		return 2
	}
	w := testutil.WatchIn(childReporter{}, path, testutil.ChangeEvents)
	fmt.Println("ready")
	for end := time.Now().Add(time.Duration(n) * time.Millisecond); ; {
		ev, ok := w.Next(time.Until(end))
		if !ok {
			fmt.Println("timeout")
			return 0
		}
		fmt.Printf("event %#x\n", ev.Mask)
		if ev.Has(unix.IN_CLOSE_WRITE) {
			data, err := os.ReadFile(path)
			var st syscall.Stat_t
			if err == nil {
				err = syscall.Stat(path, &st)
			}
			if err != nil {
				fmt.Println("read failed:", err)
				return 0
			}
			fmt.Printf("read %d %x\n", st.Size, data)
			return 0
		}
	}
}

// childContainer runs the "container" child mode on "SRC DST [SRC DST...]".
func childContainer(arg string) int {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f)%2 != 0 {
		fmt.Println("want SRC DST pairs:", arg)
		return 2
	}
	for i := 0; i < len(f); i += 2 {
		src, dst := f[i], f[i+1]
		if fi, err := os.Stat(src); err != nil {
			fmt.Println(err)
			return 2
		} else if fi.IsDir() {
			err = os.MkdirAll(dst, 0o755)
		} else {
			err = os.WriteFile(dst, nil, 0o600)
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			fmt.Println("bind", src, dst, err)
			return 2
		}
		if err := unix.Mount("", dst, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			fmt.Println("rslave", dst, err)
			return 2
		}
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		verb, path, _ := strings.Cut(in.Text(), " ")
		if verb != "read" {
			fmt.Println("unknown command", verb)
			return 2
		}
		data, err := os.ReadFile(path)
		if err != nil {
			var errno syscall.Errno
			if errors.As(err, &errno) {
				fmt.Printf("errno %d\n", errno)
				continue
			}
			fmt.Println(err)
			return 2
		}
		fmt.Printf("ok %x\n", data)
	}
	return 0
}
