package csi

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestIssue14_19_IdentitiesAreIsolatedOverTheWire: against the emulator's
// IAM (verified signatures, STS AssumeRoleWithWebIdentity, the Pod Identity
// endpoint, per-role policies), each pod reads its own role's secrets and
// gets EACCES for the other's; the driver's own key signs nothing; calls
// are counted per identity.
func TestIssue14_19_IdentitiesAreIsolatedOverTheWire(t *testing.T) {
	a := newAWS(t)
	a.create(t, "app/db", "value-app")
	a.create(t, "admin/root", "value-admin")
	r := newRig(t, a)

	attrs := map[string]string{attrMapping: testutil.MappingDoc("db", "app/db", "root", "admin/root")}
	pods := []struct {
		p          pod
		own, other string
	}{
		{pod{ns: "shop", sa: "app-a", name: "web-1", role: roleA}, "db", "root"},
		{pod{ns: "ops", sa: "admin", name: "admin-1", role: roleAdmin}, "root", "db"},
		{pod{ns: "shop", sa: "app-b", name: "web-2"}, "db", "root"}, // EKS Pod Identity
	}
	for _, pc := range pods {
		target := r.target(pc.p.name)
		r.publish(r.request(pc.p.name, target, pc.p, attrs, time.Now().Add(time.Hour)))
		if got := read(t, filepath.Join(target, pc.own)); got == "" {
			t.Fatalf("%s reads its own secret empty", pc.p.name)
		}
		if _, err := os.ReadFile(filepath.Join(target, pc.other)); !errors.Is(err, syscall.EACCES) {
			t.Errorf("%s reads the other identity's secret: %v, want EACCES", pc.p.name, err)
		}
		t.Cleanup(func() { r.unpublish(pc.p.name, target) })
	}
	calls := a.emu.CallsByIdentity()
	t.Logf("calls by identity: %v", calls)
	for _, who := range []string{roleA, roleAdmin, roleB} {
		if len(calls[who]) == 0 {
			t.Errorf("no call made as %s", who)
		}
	}
	for who := range calls {
		if who != roleA && who != roleAdmin && who != roleB {
			t.Errorf("calls made as %s: %v", who, calls[who])
		}
	}
}
