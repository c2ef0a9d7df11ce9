package emulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DefaultListen is the address Start listens on when given none: a free
// port on the IPv4 loopback.
const DefaultListen = "127.0.0.1:0"

// Server serves an Emulator over HTTP on a TCP listener, with the control
// endpoint under ControlPrefix. It can refuse connections for a while by
// really closing its listening socket.
type Server struct {
	emu  *Emulator
	log  *slog.Logger
	http *http.Server
	addr string // host:port actually bound

	mu       sync.Mutex
	ln       net.Listener          // nil while refusing; guarded by mu
	conns    map[net.Conn]struct{} // open connections; guarded by mu
	timer    *time.Timer           // ends a timed refusal; guarded by mu
	closed   bool                  // guarded by mu
	serveErr error                 // first unexpected Serve error; guarded by mu
	serving  sync.WaitGroup
}

// Start serves e on addr ("host:port"; DefaultListen when empty) until
// Close. The listener is bound when Start returns, so URL is usable at once.
// Requests whose Host header names neither a loopback address, localhost
// nor addr's host are answered 403 (DNS rebinding); any Host is answered
// when addr's host is empty or unspecified (0.0.0.0, ::).
func Start(e *Emulator, addr string) (*Server, error) {
	if addr == "" {
		addr = DefaultListen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &Server{
		emu:   e,
		log:   e.log,
		addr:  ln.Addr().String(),
		conns: make(map[net.Conn]struct{}),
	}
	mux := http.NewServeMux()
	mux.Handle(ControlPrefix, s.controlHandler())
	mux.Handle("/", e)
	s.http = &http.Server{
		Handler:           hostGuard(addr, mux),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         s.trackConn,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	s.serve(ln)
	s.mu.Unlock()
	return s, nil
}

// hostGuard answers 403 to a request whose Host header allowedHost refuses.
func hostGuard(listen string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowedHost(listen, r.Host) {
			http.Error(w, fmt.Sprintf("emulator: Host %q is refused: only loopback names (127.0.0.1, [::1], localhost) "+
				"or the host given to --listen are answered, so that a web page cannot reach the emulator by "+
				"pointing its own name at this address (DNS rebinding)", r.Host), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowedHost reports whether a request's Host header may be answered by a
// server told to listen on listen (HOST:PORT): a loopback address or
// "localhost", the listen host itself, or anything when listening on every
// address (whoever exposes the emulator that way chose to).
func allowedHost(listen, host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if h == "" {
		return false
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	lh, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	lip := net.ParseIP(lh)
	switch {
	case lh == "" || (lip != nil && lip.IsUnspecified()):
		return true
	case lip != nil:
		ip := net.ParseIP(h)
		return ip != nil && ip.Equal(lip)
	}
	return strings.EqualFold(h, lh)
}

// serve starts serving ln. The caller holds mu.
func (s *Server) serve(ln net.Listener) {
	s.ln = ln
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		err := s.http.Serve(ln)
		if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			s.mu.Lock()
			if s.serveErr == nil {
				s.serveErr = err
			}
			s.mu.Unlock()
			s.log.Warn("emulator stopped serving", "addr", s.addr, "err", err)
		}
	}()
}

func (s *Server) trackConn(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state {
	case http.StateNew:
		if s.ln == nil {
			// Accepted just before the listener closed: refuse it too.
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// URL returns the endpoint's base URL, e.g. "http://127.0.0.1:41234", to
// give the SDK as BaseEndpoint or the CLI as --endpoint-url.
func (s *Server) URL() string { return "http://" + s.addr }

// Addr returns the host:port the server is bound to.
func (s *Server) Addr() string { return s.addr }

// Emulator returns the emulator the server serves.
func (s *Server) Emulator() *Emulator { return s.emu }

// SetRefusing closes the listening socket and every open connection (on),
// so that new connections are refused by the kernel, or binds the same
// address again and serves it (off). Turning it off fails if another
// process took the port meanwhile.
func (s *Server) SetRefusing(on bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	return s.setRefusing(on)
}

// setRefusing does SetRefusing's work. The caller holds mu.
func (s *Server) setRefusing(on bool) error {
	if s.closed {
		return errors.New("emulator server is closed")
	}
	if on {
		if s.ln == nil {
			return nil
		}
		err := s.ln.Close()
		s.ln = nil
		for c := range s.conns {
			_ = c.Close()
		}
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("close listener: %w", err)
		}
		s.log.Debug("emulator refusing connections", "addr", s.addr)
		return nil
	}
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen again on %s: %w", s.addr, err)
	}
	s.serve(ln)
	s.log.Debug("emulator accepting connections again", "addr", s.addr)
	return nil
}

// RefuseConnections refuses connections for d, then accepts them again on
// the same address. A later call replaces the pending end.
func (s *Server) RefuseConnections(d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	if err := s.setRefusing(true); err != nil {
		return err
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.timer != t {
			return // replaced or cancelled meanwhile
		}
		s.timer = nil
		if err := s.setRefusing(false); err != nil && !s.closed {
			s.log.Warn("emulator could not accept connections again", "err", err)
		}
	})
	s.timer = t
	return nil
}

// Refusing reports whether the server is refusing connections.
func (s *Server) Refusing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ln == nil && !s.closed
}

// Close stops the server: the listener and every connection are closed
// and Close waits for the serving goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
	err := s.http.Close()
	if errors.Is(err, net.ErrClosed) {
		// A listener closed on purpose by a refusal, which http.Server
		// still tracks until its Serve returns: nothing failed.
		err = nil
	}
	s.serving.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(err, s.serveErr)
}

// Shutdown stops the server gracefully: it stops accepting, waits for the
// requests in flight to finish or ctx to end, then closes everything.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.mu.Unlock()
	err := s.http.Shutdown(ctx)
	return errors.Join(err, s.Close())
}
