package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// csiVolumesEnv sets how many volumes each step of
// TestIssue14_31_MemoryPerVolume publishes.
const csiVolumesEnv = "SECRETSFS_CSI_VOLUMES"

// driverMemory is what /proc tells of the driver at one step.
type driverMemory struct {
	volumes          int
	rss, anon        int // VmRSS and RssAnon, KiB
	threads          int
	stsCalls, values int // STS and Secrets Manager value calls so far
}

// TestIssue14_31_MemoryPerVolume measures what the CSI driver's volumes
// cost in memory, on a build without the race detector as it runs on a
// node: the driver's resident set when idle, with the first volume, with
// V more volumes of that volume's identity (they share its cache) and
// with V volumes of V new identities (a cache each). V is 10, or
// SECRETSFS_CSI_VOLUMES. Every volume maps one secret and is read once, as
// a pod reads its secrets. It prints the figures; its only bounds are
// generous ones against a leak or a cache per volume, not a measure of
// this machine.
func TestIssue14_31_MemoryPerVolume(t *testing.T) {
	v := 10
	if s := os.Getenv(csiVolumesEnv); s != "" {
		var err error
		if v, err = strconv.Atoi(s); err != nil || v < 1 {
			t.Fatalf("%s=%q: want a number of volumes, such as 200", csiVolumesEnv, s)
		}
	}
	bins := t.TempDir()
	testutil.BuildBinaries(t, bins, ".")
	n := newK8sNodeRunning(t, filepath.Join(bins, "secretsfs"))
	n.create("app/db", "value-db")
	attrs := map[string]string{"mapping": testutil.MappingDoc("db", "app/db")}
	pid := n.driver.Cmd.Process.Pid
	var reqs []*csi.NodePublishVolumeRequest
	sample := func() driverMemory {
		calls := 0
		for _, c := range n.emu.CallsByIdentity() {
			calls += c[emulator.OpGetSecretValue] + c[emulator.OpBatchGetSecretValue]
		}
		return driverMemory{volumes: len(reqs), rss: procStatus(t, pid, "VmRSS"), anon: procStatus(t, pid, "RssAnon"),
			threads: procStatus(t, pid, "Threads"), stsCalls: len(n.sts.Calls()), values: calls}
	}
	// tenant-N is an identity of its own (the role trusts every tenant-*).
	publish := func(tenant, pod int) {
		p := newPod("shop", fmt.Sprintf("tenant-%d", tenant), fmt.Sprintf("web-%d-%d", tenant, pod), k8sRoleTenant)
		req := n.request(p, attrs, time.Now().Add(time.Hour))
		n.publish(req)
		reqs = append(reqs, req)
		if got := mustRead(t, filepath.Join(req.TargetPath, "db")); got != "value-db" {
			t.Fatalf("%s reads %q", p.name, got)
		}
	}

	idle := sample()
	publish(0, 0)
	first := sample()
	for i := range v {
		publish(0, i+1)
	}
	same := sample()
	for i := range v {
		publish(i+1, 0)
	}
	fresh := sample()
	if m := n.mountsUnder(); len(m) != 2*v+1 {
		t.Fatalf("%d mounts below kubelet's directory, want %d", len(m), 2*v+1)
	}
	for _, req := range reqs {
		n.unpublish(req.VolumeId, req.TargetPath)
	}
	reqs = nil
	after := sample()

	perVolume := float64(same.rss-first.rss) / float64(v)
	perNew := float64(fresh.rss-same.rss) / float64(v)
	var b strings.Builder
	fmt.Fprintf(&b, "%-44s %8s %10s %10s %8s %4s %6s\n", "step", "volumes", "RSS KiB", "anon KiB", "threads", "STS", "values")
	for _, r := range []struct {
		step string
		m    driverMemory
	}{
		{"idle", idle}, {"the first volume", first},
		{fmt.Sprintf("%d more of its identity", v), same}, {fmt.Sprintf("%d of %d new identities", v, v), fresh},
		{"all unpublished", after},
	} {
		fmt.Fprintf(&b, "%-44s %8d %10d %10d %8d %4d %6d\n", r.step, r.m.volumes, r.m.rss, r.m.anon, r.m.threads, r.m.stsCalls, r.m.values)
	}
	fmt.Fprintf(&b, "per volume of an identity already served: %.0f KiB RSS (%.0f KiB anonymous)\n",
		perVolume, float64(same.anon-first.anon)/float64(v))
	fmt.Fprintf(&b, "per volume of a new identity: %.0f KiB RSS (%.0f KiB anonymous), so %.0f KiB per identity\n",
		perNew, float64(fresh.anon-same.anon)/float64(v), perNew-perVolume)
	fmt.Fprintf(&b, "the first volume: %d KiB RSS over the idle driver's %d KiB\n", first.rss-idle.rss, idle.rss)
	t.Logf("the CSI driver's memory (a build without -race, %s=%d):\n%s", csiVolumesEnv, v, b.String())

	// One STS call and one value call per identity, whatever the volumes.
	if fresh.stsCalls != v+1 || fresh.values != v+1 {
		t.Errorf("%d STS calls and %d value calls for %d volumes of %d identities, want %d of each",
			fresh.stsCalls, fresh.values, 2*v+1, v+1, v+1)
	}
	// Against a leak or a cache per volume, not a measure of this machine:
	// the measured figures are some hundreds of KiB a volume and about a
	// MiB an identity (README, Sizing and cost).
	const volumeBound, identityBound = 4 << 10, 16 << 10 // KiB
	if perVolume > volumeBound || perNew > volumeBound+identityBound {
		t.Errorf("%.0f KiB per volume of one identity and %.0f KiB per volume of a new one, over the bounds of %d and %d KiB",
			perVolume, perNew, volumeBound, volumeBound+identityBound)
	}
	if m := n.mountsUnder(); len(m) != 0 {
		t.Errorf("mounts left after unpublishing: %q", m)
	}
}
