// Package csi is secretsfs's CSI node driver (`secretsfs csi`): it gives
// each Kubernetes pod that asks for it with an ephemeral inline volume its
// own secretsfs mount, read under the pod's own AWS identity.
//
// It serves the CSI Identity and Node services over gRPC on a unix socket
// (kubelet and the node-driver-registrar dial it); there is no Controller
// service: ephemeral inline volumes need none. NodePublishVolume turns the
// volume's attributes (attributes.go) into a mount.Config and mounts it at
// the target path through one mount.Daemon for the whole driver;
// NodeUnpublishVolume unmounts it and removes the target directory.
//
// Decisions:
//   - Identity. The credentials of a volume come from the pod's
//     service-account tokens that kubelet passes in the volume context
//     (csi.storage.k8s.io/serviceAccount.tokens, the CSIDriver's
//     tokenRequests), never from the driver's own: with roleArn, the
//     sts.amazonaws.com token through AssumeRoleWithWebIdentity (IRSA);
//     without, the pods.eks.amazonaws.com token through the EKS Pod
//     Identity agent. A volume without the token it needs is refused.
//   - One identity, one cache. An identity is (namespace, service account,
//     role or Pod Identity, region); its tokens live in one podIdentity
//     (tokens.go), held in memory only, whose pointer is part of the
//     cache.Identity of its volumes: volumes of the same identity share the
//     Daemon's cache for it, volumes of different identities share nothing.
//     The last volume of an identity gone, the cache is closed and its
//     values wiped, and the tokens are forgotten.
//   - Republish (requiresRepublish). A publish of a target this process
//     already serves with the same volume id only hands over the new
//     tokens: no remount, the files keep their inodes. A target that holds
//     a secretsfs mount this process does not serve (a stale one left by a
//     driver that died or was upgraded, answering ENOTCONN) is mounted
//     over, and so are the volume's subPaths that kubelet bound from it.
//   - Restart. A container's bind of the volume (or of a subPath) is a copy
//     of the mount in the container's namespace: a new mount at the target
//     reaches it only by propagation, as a mount over the old one, and
//     only with mountPropagation HostToContainer. So the driver never
//     detaches a previous driver's mount at publish, and never unmounts
//     its volumes when it stops (SIGTERM): the next process mounts over
//     them at their republish; unpublish takes every layer off.
//   - Operations on one target never overlap: a second one while the
//     first is under way is answered ABORTED, and kubelet retries.
//   - Errors are gRPC statuses: a bad attribute is INVALID_ARGUMENT naming
//     the attribute and the fix (mount.Config's own checks, renamed from
//     flags to attributes), an expired token UNAUTHENTICATED. No error or
//     log line holds a token or a secret value.
package csi
