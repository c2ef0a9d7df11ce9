package csi

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/kubetoken"
)

// TestIssue14_19_IdentitiesAreIsolatedOverTheWire: against the emulator's
// IAM (verified signatures, STS AssumeRoleWithWebIdentity, the Pod Identity
// endpoint, per-role policies), each pod reads its own role's secrets and
// gets EACCES for the other's; the driver's own key (which may read
// everything) signs nothing; calls are counted per identity.
func TestIssue14_19_IdentitiesAreIsolatedOverTheWire(t *testing.T) {
	e := emulator.New()
	for _, s := range [][2]string{{"app/db", "value-app"}, {"admin/root", "value-admin"}} {
		v := s[1]
		if _, err := e.CreateSecret(emulator.Secret{Name: s[0], SecretString: &v}); err != nil {
			t.Fatal(err)
		}
	}
	issuer, err := kubetoken.NewIssuer("https://oidc.example.test/cluster")
	if err != nil {
		t.Fatal(err)
	}
	const roleAdmin, roleB = "arn:aws:iam::123456789012:role/admin", "arn:aws:iam::123456789012:role/app-b"
	if err := e.SetIAM(emulator.IAM{
		Issuers: []emulator.Issuer{{URL: issuer.URL(), JWKS: issuer.JWKS()}},
		Roles: []emulator.Role{
			{ARN: roleA, TrustIssuer: issuer.URL(), TrustSubjects: []string{kubetoken.Subject("shop", "app-a")}, Policy: emulator.Policy{Secrets: []string{"app/*"}}},
			{ARN: roleAdmin, TrustIssuer: issuer.URL(), TrustSubjects: []string{kubetoken.Subject("ops", "admin")}, Policy: emulator.Policy{Secrets: []string{"admin/*"}}},
			{ARN: roleB, Policy: emulator.Policy{Secrets: []string{"app/*"}}},
		},
		PodIdentityAssociations: []emulator.PodIdentityAssociation{{Namespace: "shop", ServiceAccount: "app-b", RoleARN: roleB}},
		AccessKeys:              []emulator.AccessKey{{AccessKeyID: "AKIDDRIVERNODE01", SecretAccessKey: "driver-secret", User: "node", Policy: emulator.Policy{Admin: true}}},
	}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDDRIVERNODE01") // the driver's own: may read everything, never used
	t.Setenv("AWS_SECRET_ACCESS_KEY", "driver-secret")
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	a := &awsStub{emu: e, srv: srv}
	r := newRig(t, a)

	tokens := func(p pod) string {
		s, err := issuer.ServiceAccountTokens(kubetoken.Claims{Namespace: p.ns, ServiceAccount: p.sa, PodName: p.name, Expiry: time.Now().Add(time.Hour)},
			kubetoken.AudienceSTS, kubetoken.AudiencePodIdentity)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	attrs := map[string]string{attrMapping: mappingDoc("db", "app/db", "root", "admin/root")}
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
		req := r.request(pc.p.name, target, pc.p, attrs, time.Now().Add(time.Hour))
		req.VolumeContext[keyTokens] = tokens(pc.p)
		r.publish(req)
		if got := read(t, filepath.Join(target, pc.own)); got == "" {
			t.Fatalf("%s reads its own secret empty", pc.p.name)
		}
		if _, err := os.ReadFile(filepath.Join(target, pc.other)); !errors.Is(err, syscall.EACCES) {
			t.Errorf("%s reads the other identity's secret: %v, want EACCES", pc.p.name, err)
		}
		t.Cleanup(func() { r.unpublish(pc.p.name, target) })
	}
	calls := e.CallsByIdentity()
	t.Logf("calls by identity: %v", calls)
	for _, who := range []string{roleA, roleAdmin, roleB} {
		if len(calls[who]) == 0 {
			t.Errorf("no call made as %s", who)
		}
	}
	for who := range calls {
		if who != roleA && who != roleAdmin && who != roleB && who != "" {
			t.Errorf("calls made as %s: %v", who, calls[who])
		}
	}
}
