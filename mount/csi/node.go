package csi

import (
	"context"
	"errors"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/secretsfs/secretsfs/mount"
)

// GetPluginInfo names the driver and its version.
func (d *Driver) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	v := d.cfg.Version
	if v == "" {
		v = "unknown"
	}
	return &csi.GetPluginInfoResponse{Name: DriverName, VendorVersion: v}, nil
}

// GetPluginCapabilities lists no service beyond Identity and Node: no
// Controller service (ephemeral inline volumes need none), no topology.
func (d *Driver) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	return &csi.GetPluginCapabilitiesResponse{}, nil
}

// Probe answers ready: the driver serves as soon as it listens.
func (d *Driver) Probe(context.Context, *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}

// NodeGetCapabilities: the files' group follows the pod's fsGroup
// (VOLUME_MOUNT_GROUP), so kubelet leaves ownership to the driver.
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{Capabilities: []*csi.NodeServiceCapability{{
		Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{
			Type: csi.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP,
		}},
	}}}, nil
}

// NodeGetInfo gives the node's id; any number of volumes.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: d.cfg.NodeID}, nil
}

// NodePublishVolume mounts the volume read-only at the target path, or,
// when this process serves it there already (kubelet's periodic republish),
// hands the volume's identity the new tokens without remounting. A
// secretsfs mount that this process does not serve at the target (a stale
// one of a driver that is gone) is mounted over, not detached, and so are
// the volume's subPath binds of it (rebindSubPaths): the containers' binds
// of the volume, slaves of those mounts (HostToContainer propagation), see
// the new mounts, without the pod restarting.
func (d *Driver) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	r, expired, err := readPublish(req, d.def, d.clock.Now())
	switch {
	case err != nil:
		return nil, status.Error(codes.InvalidArgument, err.Error())
	case expired != nil:
		return nil, status.Error(codes.Unauthenticated, expired.Error())
	}
	release, ok := d.claim(r.target)
	if !ok {
		return nil, status.Errorf(codes.Aborted, "another operation on %s is under way; try again", r.target)
	}
	defer release()
	log := d.log.With("volume", r.volumeID, "pod", r.pod, "target", r.target)

	if v := d.served(r.target); v != nil {
		switch {
		case v.id != r.volumeID:
			return nil, status.Errorf(codes.AlreadyExists, "%s: volume %s is published there; unpublish it first", targetPathField, v.id)
		case v.identity.key != r.key:
			return nil, status.Errorf(codes.AlreadyExists, "volume %s is published at %s as %s, not %s; unpublish it first", v.id, r.target, v.identity.key, r.key)
		}
		select {
		case <-v.mount.Gone():
			log.Warn("the volume was unmounted from outside; mounting it again")
			v.mount.Unmount() // releases the cache
			d.forget(r.target, v.identity)
		default:
			v.identity.set(r.target, r.tokens)
			log.Debug("republished: tokens updated")
			if v.subPathsLeft {
				v.subPathsLeft = !d.rebindSubPaths(r.target, log) // what the publish could not
			}
			return &csi.NodePublishVolumeResponse{}, nil
		}
	}

	// Not MkdirAll on the target: a stale mount there answers ENOTCONN.
	if err := os.MkdirAll(filepath.Dir(r.target), 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "%s: %v", targetPathField, err)
	}
	if err := os.Mkdir(r.target, 0o750); err != nil && !errors.Is(err, iofs.ErrExist) {
		return nil, status.Errorf(codes.Internal, "%s: %v", targetPathField, err)
	}
	p := d.identity(r.key, r.target, r.tokens)
	r.cfg.Workload.Tokens = p
	r.cfg.Handover = true
	m, err := d.daemon.Add(ctx, r.cfg)
	if err != nil {
		d.forget(r.target, p)
		return nil, status.Errorf(codes.Internal, "mount at %s: %v", r.target, err)
	}
	log.Info("published", "identity", r.key.String(), "kernel_cache", r.cfg.KernelCache)
	v := &volume{id: r.volumeID, target: r.target, pod: r.pod, identity: p, mount: m}
	v.subPathsLeft = !d.rebindSubPaths(r.target, log)
	d.mu.Lock()
	d.volumes[r.target] = v
	d.mu.Unlock()
	return &csi.NodePublishVolumeResponse{}, nil
}

// rebindSubPaths binds the volume's subPaths that kubelet bound from a
// mount of a previous driver process (the stale mount under the target's)
// again from the volume's mount (mount.RebindBelow). kubelet keeps them
// below pods/UID/volume-subpaths/VOLUME for a target
// pods/UID/volumes/kubernetes.io~csi/VOLUME/mount. A failure is logged and
// answered false: the volume itself serves, and the next republish tries
// again.
func (d *Driver) rebindSubPaths(target string, log *slog.Logger) bool {
	dir, ok := subPathsDir(target)
	if !ok {
		return true
	}
	n, err := mount.RebindBelow(target, dir, log)
	if n > 0 {
		log.Info("subPaths bound again from the volume's mount", "subpaths", n)
	}
	if err != nil {
		log.Warn("some subPaths of the volume still show a previous driver's mount; trying again at the next republish", "error", err)
		return false
	}
	return true
}

// subPathsDir is where kubelet binds the subPaths of the volume at target
// (pods/UID/volumes/kubernetes.io~csi/VOLUME/mount):
// pods/UID/volume-subpaths/VOLUME.
func subPathsDir(target string) (string, bool) {
	volDir, base := filepath.Split(filepath.Clean(target))
	plugins, volume := filepath.Split(filepath.Clean(volDir))
	volumes, plugin := filepath.Split(filepath.Clean(plugins))
	pod, kind := filepath.Split(filepath.Clean(volumes))
	if base != "mount" || plugin != "kubernetes.io~csi" || kind != "volumes" || volume == "" || pod == "" {
		return "", false
	}
	return filepath.Join(pod, "volume-subpaths", volume), true
}

// NodeUnpublishVolume unmounts the volume and removes the target
// directory. A target this process does not serve is cleared as well (a
// stale mount of a previous driver) and answered OK: unpublishing twice is
// no error.
func (d *Driver) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	var b badRequest
	if req.GetVolumeId() == "" {
		b.add(volumeIDField, "missing; kubelet gives the volume's id")
	}
	checkTarget(&b, req.GetTargetPath())
	if err := b.err(); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	target := req.GetTargetPath()
	release, ok := d.claim(target)
	if !ok {
		return nil, status.Errorf(codes.Aborted, "another operation on %s is under way; try again", target)
	}
	defer release()
	log := d.log.With("volume", req.GetVolumeId(), "target", target)

	if v := d.served(target); v != nil {
		if v.id != req.GetVolumeId() {
			return nil, status.Errorf(codes.NotFound, "volume %s is not published at %s (volume %s is)", req.GetVolumeId(), target, v.id)
		}
		v.mount.Unmount()
		d.forget(target, v.identity)
		log.Info("unpublished", "pod", v.pod)
	}
	// What is left: the mounts of previous driver processes that this
	// one's went over, or all of them when this one never served the
	// target.
	n, err := mount.DetachAll(ctx, target, log)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	if n > 0 {
		log.Info("unmounted what previous drivers mounted there", "detached", n)
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "remove the target directory: %v", err)
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}
