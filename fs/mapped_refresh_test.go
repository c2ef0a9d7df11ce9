package fs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRefreshAttributeOfAMappedFileRefreshesEverySecretItUses(t *testing.T) {
	s := newFakeStore()
	s.put("db", "db1")
	s.put("api", "api1")
	ref := &fakeRefresher{}
	opts := mappedOptions(s, &fakeCatalog{}, false)
	opts.Refresher = ref
	mnt := mountFS(t, opts)
	file := filepath.Join(mnt, "app/conf/db.ini")
	if got, err := os.ReadFile(file); err != nil || string(got) != "DB1+API1" {
		t.Fatalf("read = %q, %v", got, err)
	}
	buf := make([]byte, 128)
	n, err := unix.Getxattr(file, "user.secretsfs.refresh", buf)
	if err != nil || string(buf[:n]) == "" {
		t.Fatalf("getxattr refresh = %q, %v", buf[:n], err)
	}
	if got := ref.calls(); !slices.Equal(got, []string{"db", "api"}) {
		t.Fatalf("refreshed %v, want db and api", got)
	}
	if _, err := unix.Getxattr(filepath.Join(mnt, "top"), "user.secretsfs.refresh", buf); err != nil {
		t.Fatalf("getxattr refresh: %v", err)
	}
	if got := ref.calls(); !slices.Equal(got, []string{"db", "api", "api"}) {
		t.Fatalf("refreshed %v, want api once more", got)
	}
}
