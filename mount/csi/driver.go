package csi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/mount"
)

// Driver is the CSI node driver: the Identity and Node services, one
// mount.Daemon serving every volume of the node.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedNodeServer

	cfg    Config
	def    driverDefaults
	log    *slog.Logger
	clock  cache.Clock
	daemon *mount.Daemon

	mu         sync.Mutex
	volumes    map[string]*volume           // by target path; guarded by mu
	busy       map[string]bool              // targets with an operation under way; guarded by mu
	identities map[identityKey]*podIdentity // guarded by mu
}

// volume is a volume this process serves.
type volume struct {
	id, target, pod string
	identity        *podIdentity
	mount           *mount.Mount
	// subPathsLeft: some subPaths still show a previous driver's mount
	// (rebindSubPaths failed); only the operation that claimed the target
	// reads or sets it.
	subPathsLeft bool
}

// NewDriver returns a driver for cfg (validated) logging to log, on clock
// (the tokens' expiry, the mounts' schedules).
func NewDriver(cfg Config, log *slog.Logger, clock cache.Clock) *Driver {
	return &Driver{
		cfg: cfg,
		def: driverDefaults{
			region: cfg.Region, endpointURL: cfg.EndpointURL, stsEndpoint: cfg.STSEndpointURL,
			agentURL: cfg.PodIdentityAgentURL, version: cfg.Version,
		},
		log:        log,
		clock:      clock,
		daemon:     mount.NewDaemon(mount.Env{Clock: clock}, log.With("component", "daemon")),
		volumes:    map[string]*volume{},
		busy:       map[string]bool{},
		identities: map[identityKey]*podIdentity{},
	}
}

// Daemon is the daemon serving the volumes' mounts.
func (d *Driver) Daemon() *mount.Daemon { return d.daemon }

// Run serves the driver described by cfg on its endpoint until ctx ends
// (SIGTERM), then stops serving, leaving the volumes mounted for the next
// driver process (Serve). Logs go to
// stderr. The process is hardened as `secretsfs mount`'s is (mount.Harden:
// no core dumps, memory locked unless cfg.NoMlock).
func Run(ctx context.Context, cfg Config, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	level, _ := mount.ParseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(stderr, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(stderr, opts)
	}
	log := slog.New(h)
	mount.Harden(cfg.NoMlock, log)
	l, err := Listen(cfg.Endpoint)
	if err != nil {
		return err
	}
	return NewDriver(cfg, log, cache.SystemClock()).Serve(ctx, l)
}

// Listen listens on the endpoint's unix socket, readable and writable by
// its owner only. A socket file left by a driver that died is removed
// first; any other file there is an error.
func Listen(endpoint string) (net.Listener, error) {
	path, err := socketPath(endpoint)
	if err != nil {
		return nil, fmt.Errorf("--endpoint: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("--endpoint: %s exists and is not a socket; remove it or give another path", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("--endpoint: remove the old socket %s: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("--endpoint: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("--endpoint: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("--endpoint: %w", err)
	}
	return l, nil
}

// stopGrace bounds how long Serve waits for the calls under way once ctx
// ends.
const stopGrace = 10 * time.Second

// Serve serves the Identity and Node services on l until ctx ends, then
// stops serving, waiting at most stopGrace for the calls under way. It
// returns nil then, or the error that stopped the server. The volumes stay
// mounted: once the process exits they answer ENOTCONN until the next
// driver process mounts over them at their republish, which the running
// containers' binds of them see (NodePublishVolume); unmounting them would
// leave those binds on the dead mounts for good.
func (d *Driver) Serve(ctx context.Context, l net.Listener) error {
	srv := grpc.NewServer(grpc.UnaryInterceptor(d.logCall))
	csi.RegisterIdentityServer(srv, d)
	csi.RegisterNodeServer(srv, d)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	d.log.Info("serving", "driver", DriverName, "version", d.cfg.Version, "node", d.cfg.NodeID, "endpoint", d.cfg.Endpoint)

	var err error
	select {
	case <-ctx.Done():
		d.log.Info("stopping: no more calls; the volumes stay mounted for the next driver process", "volumes", d.count())
		stopped := make(chan struct{})
		go func() {
			srv.GracefulStop()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-time.After(stopGrace): // bounds I/O, not a schedule: the real clock
			srv.Stop()
			<-stopped
		}
	case err = <-served:
		err = fmt.Errorf("gRPC server: %w", err)
	}
	return err
}

// count is how many volumes this process serves.
func (d *Driver) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.volumes)
}

// Shutdown unmounts every volume this process serves, for a program that
// embeds the driver and goes on running (tests); the volumes' target
// directories stay.
func (d *Driver) Shutdown() {
	d.mu.Lock()
	vols := make([]*volume, 0, len(d.volumes))
	for _, v := range d.volumes {
		vols = append(vols, v)
	}
	d.volumes = map[string]*volume{}
	d.identities = map[identityKey]*podIdentity{}
	d.mu.Unlock()
	for _, v := range vols {
		v.mount.Unmount()
	}
	d.log.Info("every volume unmounted", "volumes", len(vols))
}

// logCall logs each call that fails, and each call at debug level.
func (d *Driver) logCall(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	took := time.Since(start)
	if err != nil {
		st, _ := status.FromError(err)
		d.log.Warn("call failed", "method", info.FullMethod, "code", st.Code().String(), "error", st.Message(), "took", took)
		return resp, err
	}
	d.log.Debug("call", "method", info.FullMethod, "took", took)
	return resp, nil
}

// claim marks target busy for one operation; release ends it. It fails
// when another operation on target is under way.
func (d *Driver) claim(target string) (release func(), ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.busy[target] {
		return nil, false
	}
	d.busy[target] = true
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		delete(d.busy, target)
	}, true
}

// served returns the volume this process serves at target, if any.
func (d *Driver) served(target string) *volume {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.volumes[target]
}

// identity returns the podIdentity of key, made on first use, with the
// volume at target's tokens recorded.
func (d *Driver) identity(key identityKey, target string, t tokens) *podIdentity {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.identities[key]
	if p == nil {
		p = newPodIdentity(key, d.clock)
		d.identities[key] = p
	}
	p.set(target, t)
	return p
}

// forget drops the volume at target from the driver's tables, and its
// identity once it has no volume left.
func (d *Driver) forget(target string, p *podIdentity) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.volumes, target)
	if p.drop(target) && d.identities[p.key] == p {
		delete(d.identities, p.key)
	}
}
