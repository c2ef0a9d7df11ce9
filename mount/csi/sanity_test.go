package csi

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
	"google.golang.org/grpc"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestIssue14_09_CSISanity runs kubernetes-csi/csi-test's sanity suite
// against the driver over its socket, with the emulator behind it.
//
// The driver is node-only (ephemeral inline volumes need no controller), so
// the suite's [Controller Server] specs, which test a Controller service,
// are skipped, as csi-test advises for such drivers (-ginkgo.skip). One
// Node spec ("should remove target path") creates its volume through
// CreateVolume: for it, ControllerAddress points at a stand-in
// (kubeletContext below) whose CreateVolume only returns the volume context
// kubelet would pass for a pod's inline volume, so that the spec publishes
// and unpublishes through the driver's real Node service. The Node specs
// that need a controller's publish, staging, stats or expansion skip
// themselves: the driver advertises none of them.
func TestIssue14_09_CSISanity(t *testing.T) {
	a := newAWS(t)
	a.create(t, "app/db", "value-db")
	r := newRig(t, a)
	controller := filepath.Join(t.TempDir(), "controller.sock")
	serveKubeletContext(t, controller, r)

	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + r.socket
	cfg.ControllerAddress = "unix://" + controller
	cfg.TargetPath = filepath.Join(r.dir, "sanity-target") // the suite makes it and publishes at .../target
	cfg.StagingPath = filepath.Join(r.dir, "sanity-staging")
	sc := sanity.GinkgoTest(&cfg)

	var mu sync.Mutex
	var ran, passed, skipped []string
	ginkgo.ReportAfterEach(func(rep ginkgo.SpecReport) {
		mu.Lock()
		defer mu.Unlock()
		name := rep.FullText()
		switch {
		case rep.State.Is(types.SpecStatePassed):
			ran, passed = append(ran, name), append(passed, name)
		case rep.State.Is(types.SpecStateSkipped | types.SpecStatePending):
			skipped = append(skipped, name)
		default:
			ran = append(ran, name+" ("+rep.State.String()+")")
		}
	})
	gomega.RegisterFailHandler(ginkgo.Fail)
	suite, reporter := ginkgo.GinkgoConfiguration()
	suite.SkipStrings = []string{`\[Controller Server\]`}
	reporter.Succinct, reporter.NoColor = true, true
	ok := ginkgo.RunSpecs(t, "secretsfs CSI sanity", suite, reporter)
	sc.Finalize()

	mu.Lock()
	defer mu.Unlock()
	t.Logf("csi-sanity: %d specs ran, %d passed, %d skipped", len(ran), len(passed), len(skipped))
	for _, s := range passed {
		t.Logf("  passed: %s", s)
	}
	if !ok || len(passed) != len(ran) {
		t.Fatalf("csi-sanity failed: ran %v", ran)
	}
	for _, must := range []string{"should remove target path", "NodeGetCapabilities", "NodeGetInfo", "Probe", "GetPluginInfo"} {
		if !strings.Contains(strings.Join(passed, "\n"), must) {
			t.Errorf("the spec %q did not run and pass", must)
		}
	}
}

// kubeletContext stands in for what makes an inline volume's context in a
// cluster (kubelet, from the pod's spec): its CreateVolume returns a volume
// whose context is a pod's, with fresh tokens. It is the suite's
// ControllerAddress; it also answers the Identity service there.
type kubeletContext struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	r *rig
}

func serveKubeletContext(t *testing.T, socket string, r *rig) {
	t.Helper()
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	k := &kubeletContext{r: r}
	csi.RegisterIdentityServer(srv, k)
	csi.RegisterControllerServer(srv, k)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
}

func (k *kubeletContext) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	return &csi.GetPluginInfoResponse{Name: "kubelet.stand-in.test", VendorVersion: "test"}, nil
}

func (k *kubeletContext) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{}, nil
}

func (k *kubeletContext) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{}, nil
}

func (k *kubeletContext) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: []*csi.ControllerServiceCapability{{
		Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME}},
	}}}, nil
}

func (k *kubeletContext) CreateVolume(_ context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	p := pod{ns: "sanity", sa: "app", name: req.GetName(), role: roleA}
	vc := k.r.request(req.GetName(), "/unused", p, map[string]string{attrMapping: testutil.MappingDoc("db", "app/db")}, time.Now().Add(time.Hour)).VolumeContext
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{VolumeId: fmt.Sprintf("csi-%s", req.GetName()), VolumeContext: vc}}, nil
}

func (k *kubeletContext) DeleteVolume(context.Context, *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	return &csi.DeleteVolumeResponse{}, nil
}
