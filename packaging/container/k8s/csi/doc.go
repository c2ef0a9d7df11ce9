// Package csi holds no code: the directory has the Kubernetes manifests of
// the secretsfs CSI driver (the CSIDriver object and its node plugin), an
// example workload in a namespace that enforces the restricted Pod Security
// standard (example/) and the IAM policies it needs (example/iam/). This
// package's test decodes them with the Kubernetes API types and checks them
// (Pod Security admission's own checks included), without a cluster.
package csi
