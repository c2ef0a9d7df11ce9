package csi

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestIssue14_01_IdentityAndNodeInfoOverTheSocket: the Identity service
// names the driver and offers no controller; the Node service offers
// VOLUME_MOUNT_GROUP and names the node; everything else is Unimplemented.
func TestIssue14_01_IdentityAndNodeInfoOverTheSocket(t *testing.T) {
	r := newRig(t, newAWS(t))
	ctx := context.Background()
	info, err := r.ident.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil || info.GetName() != DriverName || info.GetVendorVersion() != "test" {
		t.Fatalf("GetPluginInfo = %v, %v; want %s version test", info, err, DriverName)
	}
	caps, err := r.ident.GetPluginCapabilities(ctx, &csi.GetPluginCapabilitiesRequest{})
	if err != nil || len(caps.GetCapabilities()) != 0 {
		t.Fatalf("GetPluginCapabilities = %v, %v; want none (no controller)", caps, err)
	}
	probe, err := r.ident.Probe(ctx, &csi.ProbeRequest{})
	if err != nil || !probe.GetReady().GetValue() {
		t.Fatalf("Probe = %v, %v; want ready", probe, err)
	}
	ncaps, err := r.node.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
	if err != nil || len(ncaps.GetCapabilities()) != 1 || ncaps.GetCapabilities()[0].GetRpc().GetType() != csi.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP {
		t.Fatalf("NodeGetCapabilities = %v, %v; want VOLUME_MOUNT_GROUP only", ncaps, err)
	}
	ni, err := r.node.NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil || ni.GetNodeId() != "node-1" {
		t.Fatalf("NodeGetInfo = %v, %v; want node-1", ni, err)
	}
	_, err = r.node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "v"})
	if c, _ := code(err); c != codes.Unimplemented {
		t.Fatalf("NodeStageVolume: %v, want Unimplemented", err)
	}
	if fi, err := os.Stat(r.socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %s: %v, mode %v; want 0600", r.socket, err, fi.Mode().Perm())
	}
}

// TestIssue14_02_PublishReadRepublishUnpublish: a pod's volume (IRSA) is
// mounted read-only at the target, its files readable by the pod's
// fsGroup; a republish with a fresh token keeps the same mount and inode
// and the next credentials come from the new token; unpublish unmounts,
// removes the target and closes the identity's cache.
func TestIssue14_02_PublishReadRepublishUnpublish(t *testing.T) {
	a := newAWS(t)
	a.create(t, "app/db", "s3cret-A")
	a.clock.SetCredentialTTL(2 * time.Second) // the next call after it asks STS again
	r := newRig(t, a)
	p := pod{ns: "shop", sa: "app-a", name: "web-1", role: roleA, gid: "2000"}
	target := r.target("pod-1")
	exp := r.clock.Now().Add(time.Hour)
	attrs := map[string]string{attrMapping: testutil.MappingDoc("db/password", "app/db"), attrRefreshInterval: "1s"}
	r.publish(r.request("vol-1", target, p, attrs, exp))

	file := filepath.Join(target, "db", "password")
	if got := read(t, file); got != "s3cret-A" {
		t.Fatalf("read %q, want s3cret-A", got)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Gid != 2000 || st.Uid != 0 || fi.Mode().Perm() != groupFileMode {
		t.Fatalf("file owner %d:%d mode %v; want 0:2000 %v (the pod's fsGroup)", st.Uid, st.Gid, fi.Mode().Perm(), groupFileMode)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), []byte("x"), 0o600); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write in the volume: %v, want EROFS", err)
	}
	if testutil.MountType(target) != "fuse.secretsfs" {
		t.Fatalf("target mounted as %q", testutil.MountType(target))
	}
	calls := a.sts.Calls()
	if len(calls) != 1 || calls[0].Role != roleA {
		t.Fatalf("STS calls %+v; want one for %s", calls, roleA)
	}

	// Republish (requiresRepublish) with a fresh token: no remount.
	before := testutil.MountID(target)
	req := r.request("vol-1", target, p, attrs, exp.Add(time.Hour))
	fresh := req.VolumeContext[keyTokens]
	r.publish(req)
	if testutil.MountID(target) != before {
		t.Fatalf("republish remounted the target (mount id %s -> %s)", before, testutil.MountID(target))
	}
	fi2, err := os.Stat(file)
	if err != nil || fi2.Sys().(*syscall.Stat_t).Ino != st.Ino {
		t.Fatalf("after republish: %v, inode %d -> %d", err, st.Ino, fi2.Sys().(*syscall.Stat_t).Ino)
	}
	// Once the credentials expire (on the SDK's real clock), the next
	// refresh (on the fake one) asks STS with the new token.
	deadline := time.Now().Add(15 * time.Second)
	for calls := a.sts.Calls(); len(calls) < 2 || !strings.Contains(fresh, calls[len(calls)-1].Token); calls = a.sts.Calls() {
		if time.Now().After(deadline) {
			t.Fatalf("STS was not called with the republished token: %d calls", len(calls))
		}
		r.clock.Advance(2 * time.Second) // due: a refresh, a Secrets Manager call
		time.Sleep(100 * time.Millisecond)
	}
	if got := read(t, file); got != "s3cret-A" {
		t.Fatalf("after republish read %q", got)
	}

	caches := r.driver.Daemon().Caches()
	if len(caches) != 1 {
		t.Fatalf("%d caches for one volume", len(caches))
	}
	r.unpublish("vol-1", target)
	if _, err := os.Stat(target); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("target after unpublish: %v, want removed", err)
	}
	if m := mountsUnder(r.dir); len(m) != 0 {
		t.Fatalf("mounts left: %v", m)
	}
	if n := len(r.driver.Daemon().Caches()); n != 0 {
		t.Fatalf("%d caches after the last volume went", n)
	}
	if n := len(r.driver.identities); n != 0 {
		t.Fatalf("%d identities (tokens) kept after the last volume went", n)
	}
	// Unpublishing again is no error.
	r.unpublish("vol-1", target)
}

// TestIssue14_03_BadAttributesNameThemselves: each bad attribute or
// request field is refused with INVALID_ARGUMENT naming it and the fix,
// nothing is mounted and no token reaches the message.
func TestIssue14_03_BadAttributesNameThemselves(t *testing.T) {
	a := newAWS(t)
	r := newRig(t, a)
	p := pod{ns: "shop", sa: "app-a", name: "web-1", role: roleA}
	exp := r.clock.Now().Add(time.Hour)
	for _, tc := range []struct {
		name  string
		edit  func(req *csi.NodePublishVolumeRequest)
		want  []string
		code_ codes.Code
	}{
		{"unknown attribute", set("secret", "app/db"), []string{"secret: unknown volume attribute; give secrets, prefix"}, codes.InvalidArgument},
		{"bad region", set(attrRegion, "Mars 1"), []string{`region: is "Mars 1"; give a region name`}, codes.InvalidArgument},
		{"no region", func(req *csi.NodePublishVolumeRequest) {}, nil, 0}, // the rig's driver has a default
		{"bad role", set(attrRoleARN, "app-a"), []string{`roleArn: is "app-a"; give a role ARN`}, codes.InvalidArgument},
		{"short refresh", set(attrRefreshInterval, "10ms"), []string{"refreshInterval: is 10ms; give at least 1s"}, codes.InvalidArgument},
		{"bad duration", set(attrMaxStale, "soon"), []string{`maxStale: "soon" is not a duration`}, codes.InvalidArgument},
		{"negative max stale", set(attrMaxStale, "-1h"), []string{"maxStale: is -1h0m0s; give a positive duration"}, codes.InvalidArgument},
		{"bad file mode", set(attrFileMode, "0999"), []string{`fileMode: "0999" is not a permission`}, codes.InvalidArgument},
		{"bad mode", set(attrMode, "fast"), []string{`mode: is "fast"; give per-open`}, codes.InvalidArgument},
		{"bad tag", set(attrTags, "=x"), []string{`tags: "=x" is not KEY=VALUE`}, codes.InvalidArgument},
		{"bad prefix", set(attrPrefix, "a b"), []string{`prefix: "a b" is not the start of a secret name`}, codes.InvalidArgument},
		{"secrets and prefix", sets(attrSecrets, "app/db", attrPrefix, "app/"), []string{"secrets: shows only the named secrets, while prefix and tags narrow a listing"}, codes.InvalidArgument},
		{"mapping and secrets", sets(attrSecrets, "app/db", attrMapping, testutil.MappingDoc("db", "app/db")), []string{"mapping: shows only its files"}, codes.InvalidArgument},
		{"mapping reads a host file", set(attrMapping, "files:\n  - path: x\n    template_file: /etc/shadow\n"), []string{"mapping:3: files[0].template_file: is not allowed here"}, codes.InvalidArgument},
		{"mapping runs a command", set(attrMapping, "files:\n  - path: x\n    secret: app/db\n    on_change:\n      command: touch /tmp/x\n"), []string{"mapping:4: files[0].on_change: is not allowed here"}, codes.InvalidArgument},
		{"mapping settings", set(attrMapping, "refresh_interval: 1s\nfiles:\n  - path: x\n    secret: app/db\n"), []string{"mapping:1: refresh_interval: is not allowed here"}, codes.InvalidArgument},
		{"mapping bad secret", set(attrMapping, "files:\n  - path: x\n    secret: a b\n"), []string{`mapping:3: files[0].secret: "a b" is not a secret id`}, codes.InvalidArgument},
		{"not ephemeral", set(keyEphemeral, "false"), []string{"csi.storage.k8s.io/ephemeral: is \"false\"; secretsfs serves ephemeral inline volumes only"}, codes.InvalidArgument},
		{"no tokens", del(keyTokens), []string{"csi.storage.k8s.io/serviceAccount.tokens: missing; the CSIDriver must request a token for audience sts.amazonaws.com"}, codes.InvalidArgument},
		{"no pod info", del(keyServiceAccount), []string{"csi.storage.k8s.io/serviceAccount.name: missing; the CSIDriver must have podInfoOnMount: true"}, codes.InvalidArgument},
		{"bad tokens", set(keyTokens, `{"sts.amazonaws.com":`), []string{"csi.storage.k8s.io/serviceAccount.tokens: is not kubelet's JSON"}, codes.InvalidArgument},
		{"another service account's token", func(req *csi.NodePublishVolumeRequest) {
			req.VolumeContext[keyTokens] = a.tokens(t, pod{ns: "shop", sa: "admin", name: "web-1"}, exp)
		}, []string{`the sts.amazonaws.com token is for "system:serviceaccount:shop:admin", not the pod's service account "system:serviceaccount:shop:app-a"`}, codes.InvalidArgument},
		{"expired token", func(req *csi.NodePublishVolumeRequest) {
			req.VolumeContext[keyTokens] = a.tokens(t, p, r.clock.Now().Add(-time.Second))
		}, []string{"the sts.amazonaws.com token of service account shop/app-a expired at"}, codes.Unauthenticated},
		{"block", func(req *csi.NodePublishVolumeRequest) {
			req.VolumeCapability.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
		}, []string{"volume_capability: block access is not supported"}, codes.InvalidArgument},
		{"bad group", func(req *csi.NodePublishVolumeRequest) {
			req.VolumeCapability.GetMount().VolumeMountGroup = "wheel"
		}, []string{`volume_capability.mount.volume_mount_group: "wheel" is not a numeric group id`}, codes.InvalidArgument},
		{"relative target", func(req *csi.NodePublishVolumeRequest) { req.TargetPath = "pods/x" }, []string{`target_path: "pods/x" is not a clean absolute path`}, codes.InvalidArgument},
		{"two problems", sets(attrRegion, "Mars 1", attrFileMode, "x"), []string{"region: is", `fileMode: "x" is not a permission`}, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := r.target("bad-" + strings.ReplaceAll(tc.name, " ", "-"))
			req := r.request("vol-bad", target, p, map[string]string{attrSecrets: "app/db"}, exp)
			tc.edit(req)
			_, err := r.node.NodePublishVolume(context.Background(), req)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("publish: %v", err)
				}
				r.unpublish("vol-bad", target)
				return
			}
			c, msg := code(err)
			if c != tc.code_ {
				t.Fatalf("code %v (%s), want %v", c, msg, tc.code_)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q\nlacks %q", msg, w)
				}
			}
			if strings.Contains(msg, "eyJ") {
				t.Errorf("the message quotes a token: %s", msg)
			}
			if m := mountsUnder(r.dir); len(m) != 0 {
				t.Errorf("mounted although refused: %v", m)
			}
		})
	}
}

func set(k, v string) func(*csi.NodePublishVolumeRequest) {
	return func(req *csi.NodePublishVolumeRequest) {
		delete(req.VolumeContext, attrSecrets)
		if k != attrMapping && k != attrPrefix && k != attrTags {
			req.VolumeContext[attrSecrets] = "app/db"
		}
		req.VolumeContext[k] = v
	}
}

func sets(kv ...string) func(*csi.NodePublishVolumeRequest) {
	return func(req *csi.NodePublishVolumeRequest) {
		delete(req.VolumeContext, attrSecrets)
		for i := 0; i+1 < len(kv); i += 2 {
			req.VolumeContext[kv[i]] = kv[i+1]
		}
	}
}

func del(k string) func(*csi.NodePublishVolumeRequest) {
	return func(req *csi.NodePublishVolumeRequest) { delete(req.VolumeContext, k) }
}

// TestIssue14_04_OneCachePerIdentity: two volumes of one identity share one
// cache (the second one's first read makes no Secrets Manager call); a
// volume of another service account gets a cache of its own; each read is
// signed with its own role's credentials, never the driver's; the last
// volume of an identity gone, its cache is closed.
func TestIssue14_04_OneCachePerIdentity(t *testing.T) {
	a := newAWS(t)
	a.create(t, "app/db", "value-db")
	a.create(t, "admin/root", "value-root")
	r := newRig(t, a)
	exp := r.clock.Now().Add(time.Hour)
	web1 := pod{ns: "shop", sa: "app-a", name: "web-1", role: roleA}
	web2 := pod{ns: "shop", sa: "app-a", name: "web-2", role: roleA}
	admin := pod{ns: "ops", sa: "admin", name: "admin-1", role: roleAdmin}
	t1, t2, t3 := r.target("web-1"), r.target("web-2"), r.target("admin-1")
	r.publish(r.request("vol-1", t1, web1, map[string]string{attrMapping: testutil.MappingDoc("db", "app/db")}, exp))
	r.publish(r.request("vol-2", t2, web2, map[string]string{attrMapping: testutil.MappingDoc("db", "app/db")}, exp))
	if n := len(r.driver.Daemon().Caches()); n != 1 {
		t.Fatalf("%d caches for two volumes of one identity, want 1", n)
	}
	if got := read(t, filepath.Join(t1, "db")); got != "value-db" {
		t.Fatalf("web-1 reads %q", got)
	}
	calls := a.emu.CallCounts()
	if got := read(t, filepath.Join(t2, "db")); got != "value-db" {
		t.Fatalf("web-2 reads %q", got)
	}
	if after := a.emu.CallCounts(); after["GetSecretValue"] != calls["GetSecretValue"] || after["DescribeSecret"] != calls["DescribeSecret"] {
		t.Fatalf("the second volume of the identity called Secrets Manager again: %v -> %v", calls, after)
	}

	r.publish(r.request("vol-3", t3, admin, map[string]string{attrMapping: testutil.MappingDoc("root", "admin/root")}, exp))
	if n := len(r.driver.Daemon().Caches()); n != 2 {
		t.Fatalf("%d caches for two identities, want 2", n)
	}
	if got := read(t, filepath.Join(t3, "root")); got != "value-root" {
		t.Fatalf("admin reads %q", got)
	}
	signers := a.signers()
	if signers[roleA] == 0 || signers[admin.role] == 0 || len(signers) != 2 {
		t.Fatalf("Secrets Manager requests signed by %v; want only %s and %s", signers, roleA, admin.role)
	}

	r.unpublish("vol-1", t1)
	if n := len(r.driver.Daemon().Caches()); n != 2 {
		t.Fatalf("%d caches while web-2 still has its volume, want 2", n)
	}
	if got := read(t, filepath.Join(t2, "db")); got != "value-db" {
		t.Fatalf("web-2 after web-1 went reads %q", got)
	}
	r.unpublish("vol-2", t2)
	if n := len(r.driver.Daemon().Caches()); n != 1 {
		t.Fatalf("%d caches once app-a has no volume, want 1", n)
	}
	r.unpublish("vol-3", t3)
	if n := len(r.driver.Daemon().Caches()); n != 0 {
		t.Fatalf("%d caches once no volume is left", n)
	}
}

// TestIssue14_05_PodIdentityUsesTheAgentOnly: without roleArn the volume's
// credentials come from the EKS Pod Identity agent, given the pod's
// pods.eks.amazonaws.com token; the driver's own credentials never sign.
func TestIssue14_05_PodIdentityUsesTheAgentOnly(t *testing.T) {
	a, r := rigWith(t, "app/db", "value-db")
	p := pod{ns: "shop", sa: "app-b", name: "web-1"}
	target := r.target("web-1")
	r.publish(r.request("vol-1", target, p, map[string]string{attrMapping: testutil.MappingDoc("db", "app/db")}, r.clock.Now().Add(time.Hour)))
	if got := read(t, filepath.Join(target, "db")); got != "value-db" {
		t.Fatalf("read %q", got)
	}
	if s := a.signers(); len(s) != 1 || s[roleB] == 0 {
		t.Fatalf("Secrets Manager requests signed by %v; want the agent's credentials for shop:app-b (%s) only", s, roleB)
	}
	if len(a.sts.Calls()) != 0 {
		t.Fatalf("STS called for a Pod Identity volume: %v", a.sts.Calls())
	}
	r.unpublish("vol-1", target)
}

// TestIssue14_06_RepublishOtherVolumeIsAlreadyExists: a target published
// with another volume id is refused; unpublishing it with the wrong id
// leaves it mounted.
func TestIssue14_06_RepublishOtherVolumeIsAlreadyExists(t *testing.T) {
	_, r := rigWith(t, "app/db", "value-db")
	p := pod{ns: "shop", sa: "app-a", name: "web-1", role: roleA}
	target := r.target("web-1")
	exp := r.clock.Now().Add(time.Hour)
	r.publish(r.request("vol-1", target, p, map[string]string{attrSecrets: "app/db"}, exp))
	_, err := r.node.NodePublishVolume(context.Background(), r.request("vol-2", target, p, map[string]string{attrSecrets: "app/db"}, exp))
	if c, msg := code(err); c != codes.AlreadyExists || !strings.Contains(msg, "vol-1") {
		t.Fatalf("publish of vol-2 on vol-1's target: %v, want AlreadyExists naming vol-1", err)
	}
	_, err = r.node.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: "vol-2", TargetPath: target})
	if c, _ := code(err); c != codes.NotFound {
		t.Fatalf("unpublish of vol-2 from vol-1's target: %v, want NotFound", err)
	}
	if testutil.MountType(target) == "" {
		t.Fatal("vol-1 was unmounted by an unpublish of vol-2")
	}
	r.unpublish("vol-1", target)
}

// TestIssue14_07_RestartRepublishReplacesTheStaleMount: a driver process
// killed with SIGKILL leaves its volume answering ENOTCONN; the next
// driver's republish of the same volume mounts over the stale mount and
// serves it again, and its unpublish of another stale volume clears it.
func TestIssue14_07_RestartRepublishReplacesTheStaleMount(t *testing.T) {
	a := newAWS(t)
	a.create(t, "app/db", "value-db")
	r := newRig(t, a) // the driver after the restart
	old, oldNode := r.child("old")

	p := pod{ns: "shop", sa: "app-a", name: "web-1", role: roleA}
	t1, t2 := r.target("web-1"), r.target("web-2")
	attrs := map[string]string{attrMapping: testutil.MappingDoc("db", "app/db")}
	exp := time.Now().Add(time.Hour)
	for id, tg := range map[string]string{"web-1": t1, "web-2": t2} {
		if _, err := oldNode.NodePublishVolume(context.Background(), r.request(id, tg, p, attrs, exp)); err != nil {
			t.Fatalf("publish on the old driver: %v", err)
		}
	}
	if got := read(t, filepath.Join(t1, "db")); got != "value-db" {
		t.Fatalf("read %q", got)
	}
	old.kill9()
	if _, err := os.ReadFile(filepath.Join(t1, "db")); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("read after the old driver died: %v, want ENOTCONN (a stale mount)", err)
	}

	r.publish(r.request("web-1", t1, p, attrs, exp)) // kubelet's periodic republish
	if got := read(t, filepath.Join(t1, "db")); got != "value-db" {
		t.Fatalf("read after the republish: %q", got)
	}
	if n := len(mountsUnder(filepath.Dir(t1))); n != 2 {
		t.Fatalf("%d mounts on the target after the republish, want 2 (the new one over the stale one)", n)
	}
	r.unpublish("web-2", t2) // never republished: a stale mount
	if _, err := os.Stat(t2); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("the stale target after unpublish: %v, want removed", err)
	}
	r.unpublish("web-1", t1)
	if m := mountsUnder(r.dir); len(m) != 0 {
		t.Fatalf("mounts left: %v", m)
	}
}

// TestIssue14_08_SigtermLeavesTheVolumesForTheNextDriver: when the driver
// stops (SIGTERM, an upgrade), it exits 0 leaving its volumes mounted,
// answering ENOTCONN, for the next driver process to mount over at their
// republish; unpublish then clears every layer.
func TestIssue14_08_SigtermLeavesTheVolumesForTheNextDriver(t *testing.T) {
	_, r := rigWith(t, "app/db", "value-db")
	child, node := r.child("child")
	p := pod{ns: "shop", sa: "app-a", name: "web-1", role: roleA}
	target := r.target("web-1")
	req := r.request("vol-1", target, p, map[string]string{attrSecrets: "app/db"}, time.Now().Add(time.Hour))
	if _, err := node.NodePublishVolume(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if testutil.MountType(target) == "" {
		t.Fatal("not mounted")
	}
	child.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-child.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the driver did not exit on SIGTERM")
	}
	if code := child.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d\n%s", code, child.stderr)
	}
	if got := testutil.MountType(target); got != "fuse.secretsfs" {
		t.Fatalf("the target after SIGTERM holds %q, want the driver's mount left in place", got)
	}
	if _, err := os.ReadDir(target); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("list the target after SIGTERM: %v, want ENOTCONN", err)
	}
	r.publish(req) // the next driver, at kubelet's republish
	if got := read(t, filepath.Join(target, "app/db/AWSCURRENT")); got != "value-db" {
		t.Fatalf("read after the republish: %q", got)
	}
	r.unpublish("vol-1", target)
	if m := mountsUnder(r.dir); len(m) != 0 {
		t.Fatalf("mounts left after unpublish: %v", m)
	}
}

// republishing a target that another live driver process serves (two
// drivers on a node during an update) mounts over the old mount; a file
// still open on the old mount keeps reading from the old driver, and the
// old driver's exit leaves the new mount in place.
func TestIssue14_17_TheOldDriverNeverUnmountsTheNewOnesVolume(t *testing.T) {
	_, r := rigWith(t, "app/db", "value-db")
	old, oldNode := r.child("old")
	p := pod{ns: "shop", sa: "app-a", name: "web-1", role: roleA}
	target := r.target("web-1")
	attrs := map[string]string{attrMapping: testutil.MappingDoc("db", "app/db")}
	exp := time.Now().Add(time.Hour)
	if _, err := oldNode.NodePublishVolume(context.Background(), r.request("web-1", target, p, attrs, exp)); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(filepath.Join(target, "db")) // as a container would hold it
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	r.publish(r.request("web-1", target, p, attrs, exp))
	newID := testutil.MountID(target)
	old.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-old.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the old driver did not exit on SIGTERM")
	}
	if testutil.MountID(target) != newID || testutil.MountType(target) == "" {
		t.Fatalf("the old driver's exit unmounted the new driver's volume\n%s", old.stderr)
	}
	if got := read(t, filepath.Join(target, "db")); got != "value-db" {
		t.Fatalf("read %q", got)
	}
	held.Close()
	r.unpublish("web-1", target)
}

// TestIssue14_18_SubPathFollowsARotation: one file of a volume
// bind-mounted onto another path (as kubelet does for a subPath) shows a
// rotation of its secret: it is the same inode, served by the driver.
func TestIssue14_18_SubPathFollowsARotation(t *testing.T) {
	a := newAWS(t)
	a.create(t, "app/db", "v1")
	r := newRig(t, a)
	p := pod{ns: "shop", sa: "app-a", name: "web-1", role: roleA}
	target := r.target("web-1")
	r.publish(r.request("vol-1", target, p, map[string]string{attrMapping: testutil.MappingDoc("db", "app/db"), attrRefreshInterval: "1s"}, r.clock.Now().Add(time.Hour)))
	sub := filepath.Join(r.dir, "subpath-db")
	if err := os.WriteFile(sub, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(filepath.Join(target, "db"), sub, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(sub, syscall.MNT_DETACH) })
	if got := read(t, sub); got != "v1" {
		t.Fatalf("subPath reads %q", got)
	}
	v2 := "v2"
	if _, err := a.emu.PutSecretValue("app/db", emulatorVersion(v2)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 15*time.Second, "the rotation through the subPath", func() bool {
		r.clock.Advance(2 * time.Second)
		b, err := os.ReadFile(sub)
		return err == nil && string(b) == "v2"
	})
	if err := syscall.Unmount(sub, 0); err != nil {
		t.Fatal(err)
	}
	r.unpublish("vol-1", target)
}

// TestIssue14_20_FiftyVolumesOfFiveIdentitiesShareFiveCaches: 50 volumes
// of 5 service accounts (10 pods each) on one node make 5 caches; every
// pod reads its secret, and Secrets Manager is asked for it (and lists it)
// once per identity, not once per volume: the volumes of an identity that
// name the same secrets share one watcher too.
func TestIssue14_20_FiftyVolumesOfFiveIdentitiesShareFiveCaches(t *testing.T) {
	a, r := rigWith(t, "app/db", "value-db")
	exp := r.clock.Now().Add(time.Hour)
	type vol struct{ id, target string }
	var vols []vol
	for i := range 50 {
		sa := fmt.Sprintf("app-%d", i%5)
		p := pod{ns: "shop", sa: sa, name: fmt.Sprintf("web-%d", i), role: roleN(i % 5)}
		v := vol{id: p.name, target: r.target(p.name)}
		r.publish(r.request(v.id, v.target, p, map[string]string{attrMapping: testutil.MappingDoc("db", "app/db")}, exp))
		vols = append(vols, v)
	}
	if n := len(r.driver.Daemon().Caches()); n != 5 {
		t.Fatalf("%d caches for 50 volumes of 5 identities, want 5", n)
	}
	for _, v := range vols {
		if got := read(t, filepath.Join(v.target, "db")); got != "value-db" {
			t.Fatalf("%s reads %q", v.id, got)
		}
	}
	calls := a.emu.CallCounts()
	values := calls["GetSecretValue"] + calls["BatchGetSecretValue"]
	t.Logf("Secrets Manager calls for 50 volumes of 5 identities: %v; STS calls: %d", calls, len(a.sts.Calls()))
	if values != 5 || len(a.sts.Calls()) != 5 || calls["ListSecrets"] != 5 {
		t.Fatalf("%d value calls, %d STS calls and %d listings, want 5 of each (one per identity)", values, len(a.sts.Calls()), calls["ListSecrets"])
	}
	for _, v := range vols {
		r.unpublish(v.id, v.target)
	}
	if n := len(r.driver.Daemon().Caches()); n != 0 {
		t.Fatalf("%d caches once every volume is gone", n)
	}
}

// subPathsDir finds kubelet's subPath directory of a volume from its target
// path, and nothing for a target of another layout.
func TestIssue14_21_SubPathsDirOfATarget(t *testing.T) {
	for target, want := range map[string]string{
		"/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/secrets/mount":  "/var/lib/kubelet/pods/u1/volume-subpaths/secrets",
		"/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/secrets/mount/": "/var/lib/kubelet/pods/u1/volume-subpaths/secrets",
		"/data/kubelet/pods/u2/volumes/kubernetes.io~csi/v/mount":           "/data/kubelet/pods/u2/volume-subpaths/v",
		"/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/secrets/other":  "",
		"/var/lib/kubelet/pods/u1/volumes/kubernetes.io~nfs/secrets/mount":  "",
		"/tmp/target": "",
		"/mount":      "",
	} {
		got, ok := subPathsDir(target)
		if got != want || ok != (want != "") {
			t.Errorf("subPathsDir(%s) = %q, %v; want %q", target, got, ok, want)
		}
	}
}
