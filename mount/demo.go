package mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/test/emulator"
)

// DemoConfig configures Demo.
type DemoConfig struct {
	// MountPoint is where to mount; empty means a new temporary directory,
	// removed on exit.
	MountPoint string
	// RotateEvery is how often demo/db is rotated (20 s by default).
	RotateEvery time.Duration
	// RefreshInterval is the daemon's refresh interval (5 s by default), so
	// that rotations show quickly.
	RefreshInterval time.Duration
	// KernelCache selects the fast, kernel-cached serving mode.
	KernelCache bool
	LogLevel    string
	LogFormat   string
	Version     string
}

// Demo runs the daemon against the built-in Secrets Manager emulator,
// started in process on loopback with sample secrets, until ctx ends. It
// rotates demo/db every RotateEvery and prints what to try once the mount
// serves. It needs no AWS account and changes no environment variable.
func Demo(ctx context.Context, dc DemoConfig, stdout, stderr io.Writer) error {
	if dc.RotateEvery <= 0 {
		dc.RotateEvery = 20 * time.Second
	}
	if dc.RefreshInterval <= 0 {
		dc.RefreshInterval = 5 * time.Second
	}
	emu := emulator.New()
	if err := seedDemo(emu); err != nil {
		return fmt.Errorf("demo: seed the emulator: %w", err)
	}
	srv, err := emulator.Start(emu, emulator.DefaultListen)
	if err != nil {
		return fmt.Errorf("demo: start the emulator: %w", err)
	}
	defer srv.Close()

	dir := dc.MountPoint
	if dir == "" {
		if dir, err = os.MkdirTemp("", "secretsfs-demo-"); err != nil {
			return fmt.Errorf("demo: make a mount point: %w", err)
		}
		defer os.Remove(dir) // empty again once unmounted
	}

	cfg := DefaultConfig()
	cfg.MountPoint = dir
	cfg.RefreshInterval = dc.RefreshInterval
	cfg.ListInterval = max(dc.RefreshInterval, MinListInterval)
	cfg.RetryDelayMax = 5 * time.Second
	cfg.Region = emu.Region()
	cfg.EndpointURL = srv.URL()
	cfg.KernelCache = dc.KernelCache
	cfg.Version = dc.Version
	if dc.LogLevel != "" {
		cfg.LogLevel = dc.LogLevel
	}
	if dc.LogFormat != "" {
		cfg.LogFormat = dc.LogFormat
	}
	// Fake credentials and none of the user's AWS settings: the emulator
	// only checks that a request is signed.
	cfg.awsConfig = &aws.Config{
		Region:      emu.Region(),
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("AKIDSECRETSFSDEMO", "secretsfs-demo", "")),
	}

	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	cfg.onServing = func() {
		printDemoTips(stdout, cfg.MountPoint, srv.URL(), dc.RotateEvery)
		wg.Go(func() { rotateDemo(rctx, cache.SystemClock(), emu, dc.RotateEvery, stdout) })
	}
	err = Run(rctx, cfg, stdout, stderr)
	stop()
	return err
}

// rotateDemo rotates demo/db every d, as clock tells it, until ctx ends.
func rotateDemo(ctx context.Context, clock cache.Clock, emu *emulator.Emulator, d time.Duration, stdout io.Writer) {
	next := clock.Now()
	for {
		next = next.Add(d)
		select {
		case <-ctx.Done():
			return
		case <-clock.Alarm(next):
			vid, err := emu.RotateSecret("demo/db")
			if err != nil {
				fmt.Fprintf(stdout, "demo: rotating demo/db failed: %v\n", err)
				continue
			}
			fmt.Fprintf(stdout, "demo: rotated demo/db to version %s (new password); the files follow within seconds\n", vid)
		}
	}
}

// seedDemo creates the sample secrets.
func seedDemo(emu *emulator.Emulator) error {
	str := func(s string) *string { return &s }
	cert := []byte{0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0xc3, 0x5d, 0x7e, 0x01, 0xff, 0x00, 0x10, 0x42}
	secrets := []emulator.Secret{
		{
			Name:         "demo/db",
			Description:  "a JSON database credential, rotated every few seconds",
			Tags:         []emulator.Tag{{Key: "app", Value: "demo"}},
			SecretString: str(`{"username":"app","password":"correct-horse-battery-staple","host":"db.demo.internal","port":5432}`),
		},
		{
			Name:        "demo/api-key",
			Description: "a plain API key with a previous version",
			Versions: []emulator.Version{
				{SecretString: str("demo-key-0001")},
				{SecretString: str("demo-key-0002")},
			},
		},
		{
			Name:         "demo/tls",
			Description:  "a secret that is also the parent of another one",
			SecretString: str("-----BEGIN DEMO KEY-----\nnot a real key\n-----END DEMO KEY-----\n"),
		},
		{
			Name:         "demo/tls/cert",
			Description:  "a binary secret",
			SecretBinary: cert,
		},
	}
	var errs []error
	for _, s := range secrets {
		if _, err := emu.CreateSecret(s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

func printDemoTips(w io.Writer, dir, endpoint string, rotate time.Duration) {
	p := func(parts ...string) string { return filepath.Join(append([]string{dir}, parts...)...) }
	fmt.Fprintf(w, `
The demo serves sample secrets from an in-process Secrets Manager emulator at %s.
Try, in another terminal:

  ls -lR %s
  cat %s; echo
  cat %s; echo
  cat %s; echo
  od -An -tx1 %s
  getfattr -d %s
  watch -n1 cat %s

demo/db is rotated every %s: its password changes, the old value moves to AWSPREVIOUS.
Press Ctrl-C to unmount and exit.

`, endpoint, dir, p("demo", "db", "AWSCURRENT"), p("demo", "db", "password"), p("demo", "api-key", "AWSPREVIOUS"),
		p("demo", "tls", "cert", "AWSCURRENT"), p("demo", "db", "password"), p("demo", "db", "password"), rotate)
}
