package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ControlPrefix is the path prefix of the control endpoint. The AWS
// protocol only ever posts to "/", so the two never meet.
//
// Routes (JSON bodies; errors are {"Error": "..."} with status 400, or 404
// for an unknown route or method):
//
//	GET    /_emulator/health  200 {"Status": "ok"}
//	GET    /_emulator/calls   200 {"Calls": {"GetSecretValue": 3, ...},
//	                          "ByIdentity": {"arn:aws:iam::123456789012:role/app":
//	                                         {"GetSecretValue": 2, ...}, ...}}
//	DELETE /_emulator/calls   204, every count back to zero
//	PUT    /_emulator/iam     an IAM model (as "IAM" in a seed file) -> 204
//	POST   /_emulator/faults  {"Operation": "GetSecretValue" or "*" (or
//	                           "AssumeRoleWithWebIdentity", "PodIdentityCredentials"),
//	                           "ErrorType": "ThrottlingException",
//	                           "Message": "...", "Status": 0, "Times": 2,
//	                           "Latency": "250ms", "Drop": false}  -> 204
//	DELETE /_emulator/faults  204, every fault removed
//	POST   /_emulator/refuse  {"Duration": "2s"} -> 204, then the port
//	                          refuses connections for that long
const ControlPrefix = "/_emulator/"

// maxRefusal bounds a refusal asked for over HTTP, since nothing can end it
// early from outside.
const maxRefusal = 10 * time.Minute

// faultRequest is a fault as the control endpoint takes it.
type faultRequest struct {
	Operation string
	ErrorType string `json:",omitempty"`
	Message   string `json:",omitempty"`
	Status    int    `json:",omitempty"`
	Times     int    `json:",omitempty"`
	Latency   string `json:",omitempty"`
	Drop      bool   `json:",omitempty"`
	SecretId  string `json:",omitempty"`
}

type refuseRequest struct {
	Duration string
}

type callsResponse struct {
	Calls      map[string]int
	ByIdentity map[string]map[string]int `json:",omitempty"`
}

func (s *Server) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+ControlPrefix+"health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"Status": "ok"})
	})
	mux.HandleFunc("GET "+ControlPrefix+"calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, callsResponse{Calls: s.emu.CallCounts(), ByIdentity: s.emu.CallsByIdentity()})
	})
	mux.HandleFunc("DELETE "+ControlPrefix+"calls", func(w http.ResponseWriter, r *http.Request) {
		s.emu.ResetCalls()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT "+ControlPrefix+"iam", func(w http.ResponseWriter, r *http.Request) {
		var cfg IAM
		if err := decodeControl(r, &cfg); err != nil {
			writeControlError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := s.emu.SetIAM(cfg); err != nil {
			writeControlError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+ControlPrefix+"faults", func(w http.ResponseWriter, r *http.Request) {
		var req faultRequest
		if err := decodeControl(r, &req); err != nil {
			writeControlError(w, http.StatusBadRequest, err.Error())
			return
		}
		f, err := req.fault()
		if err != nil {
			writeControlError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.emu.InjectFault(req.Operation, f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE "+ControlPrefix+"faults", func(w http.ResponseWriter, r *http.Request) {
		s.emu.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST "+ControlPrefix+"refuse", func(w http.ResponseWriter, r *http.Request) {
		var req refuseRequest
		if err := decodeControl(r, &req); err != nil {
			writeControlError(w, http.StatusBadRequest, err.Error())
			return
		}
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 || d > maxRefusal {
			writeControlError(w, http.StatusBadRequest, fmt.Sprintf("Duration must be a Go duration between 0 and %s, like \"2s\"", maxRefusal))
			return
		}
		// Answer first: refusing closes this very connection.
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusNoContent)
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		if err := s.RefuseConnections(d); err != nil {
			s.log.Warn("emulator could not refuse connections", "err", err)
		}
	})
	mux.HandleFunc(ControlPrefix, func(w http.ResponseWriter, r *http.Request) {
		writeControlError(w, http.StatusNotFound, fmt.Sprintf("no control route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func (req faultRequest) fault() (Fault, error) {
	if req.Operation == "" {
		return Fault{}, errors.New(`Operation is required (an operation name, or "*" for all)`)
	}
	if !isFaultable(req.Operation) {
		return Fault{}, fmt.Errorf("unknown Operation %q; known: %s, %s, %s", req.Operation, strings.Join(Operations(), ", "), OpAssumeRoleWithWebIdentity, OpPodIdentityCredentials)
	}
	f := Fault{ErrorType: req.ErrorType, Message: req.Message, Status: req.Status, Times: req.Times, Drop: req.Drop, SecretID: req.SecretId}
	if req.Latency != "" {
		d, err := time.ParseDuration(req.Latency)
		if err != nil || d < 0 {
			return Fault{}, fmt.Errorf("Latency %q is not a Go duration like \"250ms\"", req.Latency)
		}
		f.Latency = d
	}
	if f.ErrorType == "" && f.Latency == 0 && !f.Drop {
		return Fault{}, errors.New("a fault needs ErrorType, Latency or Drop")
	}
	return f, nil
}

func decodeControl(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeControlError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"Error": msg})
}

// ControlClient calls the control endpoint of an emulator that runs in
// another process.
type ControlClient struct {
	base string
	hc   *http.Client
}

// NewControlClient returns a client for the emulator at endpoint (its URL,
// as printed by "secretsfs emulator"). hc may be nil for
// http.DefaultClient.
func NewControlClient(endpoint string, hc *http.Client) *ControlClient {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &ControlClient{base: strings.TrimSuffix(endpoint, "/") + strings.TrimSuffix(ControlPrefix, "/"), hc: hc}
}

// Health succeeds once the emulator answers.
func (c *ControlClient) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/health", nil, nil)
}

// Calls returns every operation's call count.
func (c *ControlClient) Calls(ctx context.Context) (map[string]int, error) {
	var out callsResponse
	if err := c.do(ctx, http.MethodGet, "/calls", nil, &out); err != nil {
		return nil, err
	}
	return out.Calls, nil
}

// CallsByIdentity is [Emulator.CallsByIdentity] over HTTP.
func (c *ControlClient) CallsByIdentity(ctx context.Context) (map[string]map[string]int, error) {
	var out callsResponse
	if err := c.do(ctx, http.MethodGet, "/calls", nil, &out); err != nil {
		return nil, err
	}
	if out.ByIdentity == nil {
		out.ByIdentity = map[string]map[string]int{}
	}
	return out.ByIdentity, nil
}

// SetIAM is [Emulator.SetIAM] over HTTP.
func (c *ControlClient) SetIAM(ctx context.Context, cfg IAM) error {
	return c.do(ctx, http.MethodPut, "/iam", cfg, nil)
}

// ResetCalls sets every call count to zero.
func (c *ControlClient) ResetCalls(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/calls", nil, nil)
}

// InjectFault is [Emulator.InjectFault] over HTTP.
func (c *ControlClient) InjectFault(ctx context.Context, op string, f Fault) error {
	req := faultRequest{Operation: op, ErrorType: f.ErrorType, Message: f.Message, Status: f.Status, Times: f.Times, Drop: f.Drop, SecretId: f.SecretID}
	if f.Latency > 0 {
		req.Latency = f.Latency.String()
	}
	return c.do(ctx, http.MethodPost, "/faults", req, nil)
}

// ClearFaults is [Emulator.ClearFaults] over HTTP.
func (c *ControlClient) ClearFaults(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/faults", nil, nil)
}

// RefuseConnections is [Server.RefuseConnections] over HTTP. The emulator
// answers before it closes its port.
func (c *ControlClient) RefuseConnections(ctx context.Context, d time.Duration) error {
	return c.do(ctx, http.MethodPost, "/refuse", refuseRequest{Duration: d.String()}, nil)
}

func (c *ControlClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode control request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("control request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("emulator control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("emulator control %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		_ = json.Unmarshal(data, &e)
		return fmt.Errorf("emulator control %s %s: %s: %s", method, path, resp.Status, e.Error)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("emulator control %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}
