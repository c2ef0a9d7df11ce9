package fstab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/packaging/envfile"
)

// Helper runs the mount(8) helper.
type Helper struct {
	// Flags are the flags of "secretsfs mount": the options the helper
	// accepts.
	Flags []cli.Flag
	// Exe is the secretsfs binary, run as "Exe mount FLAGS MOUNTPOINT".
	Exe string
	// Environ is the helper's environment, which the daemon inherits.
	Environ []string
	// Stderr gets the helper's messages; mount(8) shows them.
	Stderr io.Writer
}

// stopWait is how long a daemon that did not serve in time gets to exit
// after SIGTERM before it is killed.
const stopWait = 10 * time.Second

// Run runs the helper with mount(8)'s arguments (args[0] is the program
// name) and returns its exit status: 0 once the mount serves, 1 for a
// mistake in the arguments or options, 32 when mounting failed.
func (h Helper) Run(ctx context.Context, args []string) int {
	prog := "mount.fuse.secretsfs"
	if len(args) > 0 {
		prog, args = args[0], args[1:]
		if i := strings.LastIndexByte(prog, '/'); i >= 0 {
			prog = prog[i+1:]
		}
	}
	fail := func(status int, format string, a ...any) int {
		fmt.Fprintf(h.Stderr, "%s: %s\n", prog, fmt.Sprintf(format, a...))
		return status
	}
	inv, err := parseArgs(args)
	if err != nil {
		return fail(exitUsage, "%v\nusage: %s SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS]", err, prog)
	}
	p, err := makePlan(inv, h.Flags)
	if err != nil {
		return fail(exitUsage, "%v", strings.ReplaceAll(err.Error(), "\n", "\n"+prog+": "))
	}
	if inv.verbose {
		for _, o := range p.ignored {
			fmt.Fprintf(h.Stderr, "%s: ignoring unknown option %s (-s)\n", prog, o)
		}
	}
	env := h.Environ
	for _, path := range p.envFiles {
		vars, err := envfile.Read(path)
		if err != nil {
			return fail(exitUsage, "env_file: %v", err)
		}
		env = envfile.Apply(env, vars)
	}
	dir, err := filepath.Abs(inv.dir)
	if err != nil {
		return fail(exitUsage, "mount point %s: %v", inv.dir, err)
	}
	argv := append([]string{h.Exe, "mount"}, p.args...)
	argv = append(argv, dir)
	if inv.verbose {
		fmt.Fprintf(h.Stderr, "%s: running %s\n", prog, describe(argv))
	}
	if inv.fake {
		return 0
	}
	out, err := start(ctx, argv, env, p.timeout)
	if err != nil {
		if out = bytes.TrimSpace(out); len(out) > 0 {
			fmt.Fprintf(h.Stderr, "%s\n", out)
		}
		return fail(exitFailure, "secretsfs mount %s: %v", dir, err)
	}
	if inv.verbose && len(out) > 0 {
		fmt.Fprintf(h.Stderr, "%s", out)
	}
	return 0
}

// describe is the daemon's command line for -v, without the value of
// --on-change-command, which may carry a credential.
func describe(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		if strings.HasPrefix(a, "--on-change-command=") {
			a = "--on-change-command=..."
		}
		words[i] = a
	}
	return strings.Join(words, " ")
}

// start runs the daemon detached from the helper's input and output and
// waits until it serves, exits, or timeout passes (then it is stopped). It
// returns what the daemon wrote to stderr meanwhile.
func start(ctx context.Context, argv, env []string, timeout time.Duration) ([]byte, error) {
	ready, addr, err := listenNotify()
	if err != nil {
		return nil, err
	}
	defer ready.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(withoutVar(env, "NOTIFY_SOCKET"), "NOTIFY_SOCKET="+addr)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, pw
	// In /, as daemons run: a working directory elsewhere would keep that
	// file system busy for as long as the mount lasts.
	cmd.Dir = "/"
	// A session of its own: no terminal, and not in mount(8)'s process
	// group, so nothing sent to that group reaches the daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return nil, err
	}
	var out tail
	copied := make(chan struct{})
	go func() {
		io.Copy(&out, pr)
		close(copied)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	served := make(chan struct{})
	go waitReady(ready, cmd.Process.Pid, served)

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-served:
		// What the daemon wrote before READY=1 is there by now, or lost
		// with no harm: nothing but warnings goes to stderr.
		pr.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		<-copied
		return out.bytes(), nil
	case err := <-exited:
		select {
		case <-served: // it served, then its mount went away at once
			return out.bytes(), nil
		default:
		}
		pr.SetReadDeadline(time.Now().Add(time.Second)) // a child may hold the pipe
		<-copied
		return out.bytes(), fmt.Errorf("the daemon exited before serving (%v)", err)
	case <-timer.C:
		err = fmt.Errorf("did not serve within %v (mount_timeout); stopped it", timeout)
	case <-ctx.Done():
		err = fmt.Errorf("interrupted before serving; stopped it")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopWait):
		cmd.Process.Kill()
		<-exited
	}
	pr.SetReadDeadline(time.Now().Add(time.Second))
	<-copied
	return out.bytes(), err
}

// listenNotify listens on an abstract unix datagram socket of a random name,
// which needs no directory and vanishes with the helper, and asks for the
// senders' credentials.
func listenNotify() (*net.UnixConn, string, error) {
	var b [12]byte
	rand.Read(b[:])
	addr := fmt.Sprintf("@secretsfs-mount/%d/%s", os.Getpid(), hex.EncodeToString(b[:]))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, "", fmt.Errorf("notification socket: %w", err)
	}
	raw, err := conn.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
		err = errors.Join(err, cerr)
	}
	if err != nil {
		conn.Close()
		return nil, "", fmt.Errorf("notification socket: %w", err)
	}
	return conn, addr, nil
}

// waitReady closes served once the process pid sends READY=1 on conn.
// Datagrams from any other process are ignored, as systemd does for
// NotifyAccess=main.
func waitReady(conn *net.UnixConn, pid int, served chan<- struct{}) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return // closed
		}
		if sender(oob[:oobn]) != pid {
			continue
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			if line == "READY=1" {
				close(served)
				return
			}
		}
	}
}

// sender is the pid in a datagram's credentials, or 0.
func sender(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for i := range msgs {
		if cred, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
			return int(cred.Pid)
		}
	}
	return 0
}

// withoutVar returns environ without the variable name.
func withoutVar(environ []string, name string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// tail keeps the last 64 KiB written to it.
type tail struct {
	mu sync.Mutex
	b  []byte // guarded by mu
}

const tailSize = 64 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailSize {
		t.b = append(t.b[:0], t.b[len(t.b)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.b)
}
