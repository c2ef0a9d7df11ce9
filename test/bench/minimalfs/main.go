// Command minimalfs is the go-fuse baseline of secretsfs's open+read+close
// benchmark: the smallest filesystem that serves one in-memory file with the
// same open behaviour as one of secretsfs's serving modes, so that the
// benchmark can tell what secretsfs adds to what go-fuse and the kernel cost
// anyway.
//
// Usage:
//
//	minimalfs -mode directio|keepcache|noopen -path a/b/file -content TEXT MOUNTPOINT
//
// Mode directio answers OPEN with FOPEN_DIRECT_IO|FOPEN_NOFLUSH and gives
// entries and attributes a 1 s timeout, as secretsfs's per-open mode does.
// Mode keepcache answers OPEN with FOPEN_KEEP_CACHE|FOPEN_NOFLUSH instead
// (reads served from the page cache between opens), with the same timeouts:
// what per-open mode would cost if its handles could share the page cache.
// Mode noopen answers OPEN and FLUSH
// with ENOSYS, which makes the kernel stop sending them for the whole mount,
// with 1 min timeouts, as secretsfs's --kernel-cache mode does. The mount is
// read-only, as secretsfs's is.
//
// The file sits at -path under the mount point, so the benchmark can give it
// the same depth as a secretsfs file. As root the mount is made with mount(2)
// and no fallback; otherwise through fusermount3. It prints "ready" on
// stdout once mounted and unmounts on SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// file is the one file: fixed content, read-only.
type file struct {
	fs.Inode
	data      []byte
	noOpen    bool
	openFlags uint32 // the flags OPEN answers, unless noOpen
}

var (
	_ = (fs.NodeOpener)((*file)(nil))
	_ = (fs.NodeReader)((*file)(nil))
	_ = (fs.NodeGetattrer)((*file)(nil))
	_ = (fs.NodeFlusher)((*file)(nil))
)

func (f *file) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if f.noOpen {
		return nil, 0, syscall.ENOSYS
	}
	return nil, f.openFlags, 0
}

func (f *file) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off >= int64(len(f.data)) {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(f.data[off:]), 0
}

func (f *file) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o400
	out.Size = uint64(len(f.data))
	return 0
}

func (f *file) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	if f.noOpen {
		return syscall.ENOSYS
	}
	return 0
}

// root builds the directories of the file's path and the file when mounted.
type root struct {
	fs.Inode
	path []string
	leaf *file
}

var _ = (fs.NodeOnAdder)((*root)(nil))

func (r *root) OnAdd(ctx context.Context) {
	dir := &r.Inode
	for _, name := range r.path[:len(r.path)-1] {
		child := dir.NewPersistentInode(ctx, &fs.Inode{}, fs.StableAttr{Mode: syscall.S_IFDIR})
		dir.AddChild(name, child, false)
		dir = child
	}
	dir.AddChild(r.path[len(r.path)-1], dir.NewPersistentInode(ctx, r.leaf, fs.StableAttr{}), false)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "minimalfs:", err)
		os.Exit(1)
	}
}

func run() error {
	mode := flag.String("mode", "directio", "directio, keepcache or noopen")
	path := flag.String("path", "file", "the file's path under the mount point")
	content := flag.String("content", "", "the file's content")
	flag.Parse()
	if flag.NArg() != 1 {
		return fmt.Errorf("want one MOUNTPOINT argument, got %d", flag.NArg())
	}
	leaf := &file{data: []byte(*content)}
	timeout := time.Second
	switch *mode {
	case "directio":
		leaf.openFlags = fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH
	case "keepcache":
		leaf.openFlags = fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH
	case "noopen":
		leaf.noOpen = true
		timeout = time.Minute
	default:
		return fmt.Errorf("-mode must be directio, keepcache or noopen, not %q", *mode)
	}
	names := strings.Split(strings.Trim(*path, "/"), "/")
	r := &root{path: names, leaf: leaf}
	asRoot := os.Geteuid() == 0
	server, err := fs.Mount(flag.Arg(0), r, &fs.Options{
		EntryTimeout: &timeout,
		AttrTimeout:  &timeout,
		MountOptions: fuse.MountOptions{
			FsName:            "minimalfs",
			Name:              "minimalfs",
			Options:           []string{"ro"},
			DirectMount:       asRoot,
			DirectMountStrict: asRoot,
		},
	})
	if err != nil {
		return err
	}
	fmt.Println("ready")

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan struct{})
	go func() {
		server.Wait()
		close(served)
	}()
	select {
	case <-sig:
	case <-served:
		return nil // unmounted by someone else
	}
	if err := server.Unmount(); err != nil {
		return fmt.Errorf("unmount: %w", err)
	}
	<-served
	return nil
}
