package csi

import (
	"bytes"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestIssue14_32_WhatAVolumeCostsTheGoRuntime publishes volumes of one
// identity in this process and logs what each adds to the Go heap, to the
// goroutine stacks and to the goroutines (a build with -race shows larger
// heap and stack figures than the driver's; the goroutines are the same),
// then checks that unpublishing them ends every goroutine they started.
// test/e2e's TestIssue14_31_MemoryPerVolume measures the driver's resident
// set.
func TestIssue14_32_WhatAVolumeCostsTheGoRuntime(t *testing.T) {
	const volumes = 20
	_, r := rigWith(t, "app/db", "value-db")
	exp := r.clock.Now().Add(time.Hour)
	attrs := map[string]string{attrMapping: testutil.MappingDoc("db", "app/db")}
	type vol struct{ id, target string }
	var vols []vol
	publish := func(i int) {
		p := pod{ns: "shop", sa: "app-0", name: fmt.Sprintf("web-%d", i), role: roleN(0)}
		v := vol{id: p.name, target: r.target(p.name)}
		r.publish(r.request(v.id, v.target, p, attrs, exp))
		vols = append(vols, v)
		if got := read(t, filepath.Join(v.target, "db")); got != "value-db" {
			t.Fatalf("%s reads %q", v.id, got)
		}
	}
	goroutines0 := runtime.NumGoroutine()
	publish(0) // the identity's cache and client, and the first mount
	goroutines1 := runtime.NumGoroutine()
	heap1, stacks1 := testutil.LiveMemory()
	for i := range volumes {
		publish(i + 1)
	}
	heap2, stacks2 := testutil.LiveMemory()
	goroutines2 := runtime.NumGoroutine()
	perVolume := float64(goroutines2-goroutines1) / volumes
	t.Logf("per volume of an identity already served: %.0f KiB of heap, %.0f KiB of goroutine stacks, %.1f goroutines (%d goroutines idle, %d with the first volume, %d with %d)",
		float64(heap2-heap1)/volumes/1024, float64(stacks2-stacks1)/volumes/1024, perVolume,
		goroutines0, goroutines1, goroutines2, volumes+1)

	// Each goroutine blocked in poll holds a thread (and its stacks): one
	// watches the mount table for every volume, not one per volume.
	if n := mountTableWatchers(); n != 1 {
		t.Errorf("%d goroutines watch the mount table for %d volumes, want 1", n, volumes+1)
	}

	for _, v := range vols {
		r.unpublish(v.id, v.target)
	}
	// What stays is what does not grow with the volumes: the gRPC
	// connection, the SDK's idle HTTP connections to the emulator (both
	// ends in this process). A goroutine left by each volume would leave
	// over volumes more.
	testutil.Eventually(t, 10*time.Second, "the volumes' goroutines ended", func() bool {
		return runtime.NumGoroutine() <= goroutines0+volumes
	})
	t.Logf("%d goroutines once every volume is unpublished", runtime.NumGoroutine())
}

// mountTableWatchers counts the goroutines blocked in poll(2) for package
// fs's watch of the mount table.
func mountTableWatchers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("golang.org/x/sys/unix.Poll(")) && bytes.Contains(g, []byte("github.com/secretsfs/secretsfs/fs.")) {
			count++
		}
	}
	return count
}
