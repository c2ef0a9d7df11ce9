package emulator

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// DemoSecret is the sample secret that `secretsfs demo` rotates.
const DemoSecret = "demo/db"

// SeedDemo creates the sample secrets of `secretsfs demo` in e: a JSON
// credential (DemoSecret), a plain key with a previous version, and a secret
// that is also the parent of a binary one.
func SeedDemo(e *Emulator) error {
	str := func(s string) *string { return &s }
	cert := []byte{0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0xc3, 0x5d, 0x7e, 0x01, 0xff, 0x00, 0x10, 0x42}
	secrets := []Secret{
		{
			Name:         DemoSecret,
			Description:  "a JSON database credential, rotated every few seconds",
			Tags:         []Tag{{Key: "app", Value: "demo"}},
			SecretString: str(`{"username":"app","password":"correct-horse-battery-staple","host":"db.demo.internal","port":5432}`),
		},
		{
			Name:        "demo/api-key",
			Description: "a plain API key with a previous version",
			Versions: []Version{
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
		if _, err := e.CreateSecret(s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// WriteDemoTips writes what to try once the demo's secrets are mounted on
// dir, served by the emulator at endpoint, with DemoSecret rotated every
// rotate.
func WriteDemoTips(w io.Writer, dir, endpoint string, rotate time.Duration) {
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
  inotifywait -m %s    # package inotify-tools: an event at each rotation

%s is rotated every %s: its password changes, the old value moves to AWSPREVIOUS.
Press Ctrl-C to unmount and exit.

`, endpoint, dir, p(DemoSecret, "AWSCURRENT"), p(DemoSecret, "password"), p("demo", "api-key", "AWSPREVIOUS"),
		p("demo", "tls", "cert", "AWSCURRENT"), p(DemoSecret, "password"), p(DemoSecret, "password"),
		p(DemoSecret, "password"), DemoSecret, rotate)
}
