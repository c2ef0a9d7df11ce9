package csi

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/mount"
)

// DriverName is the CSI driver's name: the CSIDriver object's and the
// pods' spec.volumes[].csi.driver.
const DriverName = "csi.secretsfs.io"

// Config is what `secretsfs csi` is started with; Validate names the flag
// of each bad field.
type Config struct {
	// Endpoint is the unix socket to serve on: unix:///csi/csi.sock.
	Endpoint string
	// NodeID is the node's name (spec.nodeName, from the downward API).
	NodeID string
	// Region is the region of the volumes that give none; empty: every
	// volume must give its own.
	Region string
	// EndpointURL, when set, replaces the Secrets Manager endpoint of every
	// volume (a VPC endpoint, an emulator).
	EndpointURL string
	// STSEndpointURL, when set, replaces the STS endpoint of the volumes'
	// AssumeRoleWithWebIdentity (IRSA).
	STSEndpointURL string
	// PodIdentityAgentURL is the EKS Pod Identity agent's credentials
	// endpoint, for the volumes without a role.
	PodIdentityAgentURL string
	// LogLevel is debug, info, warn or error; LogFormat text or json.
	LogLevel, LogFormat string
	// NoMlock leaves the driver's memory unlocked: the volumes' secrets may
	// then be swapped to disk.
	NoMlock bool
	// Version goes into the plugin info and the User-Agent.
	Version string
}

// DefaultConfig returns the defaults: the Pod Identity agent's usual
// endpoint, text logs at info level.
func DefaultConfig() Config {
	return Config{
		PodIdentityAgentURL: cache.DefaultPodIdentityAgentURL,
		LogLevel:            mount.DefaultLogLevel,
		LogFormat:           mount.DefaultLogFormat,
	}
}

// Validate checks every field and returns one error per bad field, each
// naming its flag and the fix, joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, &mount.FieldError{Flag: flag, Problem: fmt.Sprintf(format, args...)})
	}
	if _, err := socketPath(c.Endpoint); err != nil {
		bad("--endpoint", "%v", err)
	}
	if strings.TrimSpace(c.NodeID) == "" {
		bad("--node-id", "missing; give the node's name, e.g. --node-id=$(NODE_NAME) with NODE_NAME from the downward API (spec.nodeName)")
	}
	// The region and the Secrets Manager endpoint as the mount command
	// checks them, under this command's flags.
	probe := mount.DefaultConfig()
	probe.MountPoint, probe.Region, probe.EndpointURL = "/", c.Region, c.EndpointURL
	if err := probe.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, u := range []struct{ flag, value, example string }{
		{"--sts-endpoint-url", c.STSEndpointURL, "https://sts.us-east-1.amazonaws.com"},
		{"--pod-identity-agent-url", c.PodIdentityAgentURL, cache.DefaultPodIdentityAgentURL},
	} {
		if u.value == "" && u.flag == "--sts-endpoint-url" {
			continue
		}
		if p, err := url.Parse(u.value); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad(u.flag, "is %q; give an absolute URL such as %s", u.value, u.example)
		}
	}
	if _, err := mount.ParseLevel(c.LogLevel); err != nil {
		bad("--log-level", "%v", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		bad("--log-format", "is %q; give text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// socketPath reads the unix socket's path from an endpoint such as
// unix:///csi/csi.sock (or unix:/csi/csi.sock).
func socketPath(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	switch {
	case endpoint == "":
		return "", errors.New("missing; give the unix socket to serve on, e.g. unix:///csi/csi.sock")
	case err != nil || u.Scheme != "unix":
		return "", fmt.Errorf("is %q; give a unix socket such as unix:///csi/csi.sock", endpoint)
	}
	path := u.Path
	if path == "" {
		path = u.Opaque
	}
	if u.Host != "" || !filepath.IsAbs(path) {
		return "", fmt.Errorf("is %q; give an absolute socket path such as unix:///csi/csi.sock", endpoint)
	}
	return filepath.Clean(path), nil
}
