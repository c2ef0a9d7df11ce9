package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// testCA signs the certificates of the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "secretsfs test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a PEM bundle (certificate, then its key) for a server
// named secretsfs.test whose subject's common name is cn.
func (ca *testCA) issue(t *testing.T, cn string, serial int64) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     []string{"secretsfs.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}

// reloadingServer is a TLS server of the kind the issue is about: it loads
// its certificate and key from one file at start, and again only when
// fsnotify reports that the file was written; it never polls.
type reloadingServer struct {
	ln      net.Listener
	cert    atomic.Pointer[tls.Certificate]
	reloads atomic.Int32 // loads caused by an event
	events  atomic.Int32 // fsnotify write events seen
	watcher *fsnotify.Watcher
	wg      sync.WaitGroup
}

func startReloadingServer(t *testing.T, file string) *reloadingServer {
	t.Helper()
	s := &reloadingServer{}
	if err := s.load(file); err != nil {
		t.Fatalf("loading %s: %v", file, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(file); err != nil {
		w.Close()
		t.Fatalf("watching %s: %v", file, err)
	}
	s.watcher = w
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Write) || ev.Has(fsnotify.Create) {
					s.events.Add(1)
					// A file changed in two writes would fail to parse
					// between them: keep the old pair until it parses.
					if s.load(file) == nil {
						s.reloads.Add(1)
					}
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.cert.Load(), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.(*tls.Conn).Handshake()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		w.Close()
		s.wg.Wait()
	})
	return s
}

func (s *reloadingServer) load(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(b, b)
	if err != nil {
		return err
	}
	s.cert.Store(&pair)
	return nil
}

// servedName dials the server as a new client and returns the common name
// of the certificate it presented.
func servedName(s *reloadingServer, pool *x509.CertPool) (string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.ln.Addr().String(),
		&tls.Config{RootCAs: pool, ServerName: "secretsfs.test"})
	if err != nil {
		return "", err
	}
	defer c.Close()
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", errors.New("no certificate")
	}
	return certs[0].Subject.CommonName, nil
}

// TestIssue13_13_TLSServerReloadsItsCertificateOnAnInotifyEvent: a TLS server
// that reloads its certificate when fsnotify says its file was written
// serves the rotated certificate to a new connection after the secret is
// rotated, with no restart, no hook and no polling.
func TestIssue13_13_TLSServerReloadsItsCertificateOnAnInotifyEvent(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			w := newWorld(t)
			ca := newTestCA(t)
			w.createString("web/tls", ca.issue(t, "v1", 2))
			d := w.startDaemon(append([]string{"--refresh-interval", "1s"}, m.flags...)...)
			srv := startReloadingServer(t, d.path("web/tls/AWSCURRENT"))
			if cn, err := servedName(srv, ca.pool); err != nil || cn != "v1" {
				t.Fatalf("before the rotation the server presents %q (%v), want v1", cn, err)
			}

			w.put("web/tls", ca.issue(t, "v2", 3))
			var cn string
			eventually(t, 10*time.Second, "a new connection gets the rotated certificate", func() bool {
				cn, _ = servedName(srv, ca.pool)
				return cn == "v2"
			})
			if srv.reloads.Load() < 1 {
				t.Errorf("the server reloaded %d times on %d events", srv.reloads.Load(), srv.events.Load())
			}
		})
	}
}

// TestIssue13_14_TLSServerControlOnTmpfs: the same server over a file of a
// local filesystem written in place reloads, and a watcher sees the write,
// so a failure of the tests that use them is secretsfs's, not theirs.
func TestIssue13_14_TLSServerControlOnTmpfs(t *testing.T) {
	ca := newTestCA(t)
	file := t.TempDir() + "/tls.pem"
	if err := os.WriteFile(file, []byte(ca.issue(t, "v1", 2)), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startReloadingServer(t, file)
	events := testutil.Watch(t, file, testutil.ChangeEvents)
	if cn, err := servedName(srv, ca.pool); err != nil || cn != "v1" {
		t.Fatalf("the server presents %q (%v), want v1", cn, err)
	}
	if err := os.WriteFile(file, []byte(ca.issue(t, "v2", 3)), 0o600); err != nil {
		t.Fatal(err)
	}
	waitWritten(events, 2*time.Second)
	eventually(t, 10*time.Second, "a new connection gets the new certificate", func() bool {
		cn, _ := servedName(srv, ca.pool)
		return cn == "v2"
	})
}

// waitWritten waits for the IN_MODIFY and then the IN_CLOSE_WRITE a write
// of the watched file raises, failing the test if they do not come within.
func waitWritten(w *testutil.Watcher, within time.Duration) {
	end := time.Now().Add(within)
	w.WaitFor(within, unix.IN_MODIFY, "")
	w.WaitFor(time.Until(end), unix.IN_CLOSE_WRITE, "")
}
