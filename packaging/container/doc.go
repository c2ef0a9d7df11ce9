// Package container holds no code: the directory has the container image's
// Dockerfile and Kubernetes manifests (k8s/), and this package's test parses
// and checks them structurally, without a Docker engine or a cluster.
package container
