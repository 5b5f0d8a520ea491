package agent

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

// fakeServer implements the device API the way the real server must: every
// request is verified (signature, clock, nonce replay), the device's state
// is a small state machine the test drives, wait is a real long poll, and
// the bundle is sealed to the seal key the agent enrolled with.
type fakeServer struct {
	t        *testing.T
	srv      *httptest.Server
	verifier *protocol.Verifier
	hold     time.Duration // how long wait holds an unchanged state

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every state change
	enrolled    chan struct{} // closed on the first successful enroll
	fingerprint string
	code        string
	mac         string
	sealKey     []byte
	csrs        []string // every CSR enrolled, oldest first
	state       string
	name        string
	reason      string
	bundle      *protocol.Bundle
	secrets     map[string][]byte // plaintext of the sealed fields
	acked       string
	faults      []int // status codes to answer the next requests with
	retryAfter  string
	forgetOnce  bool               // answer the next wait with 404, as after a server restore
	pollAfter   int                // when set, waits are not held but answered with this poll_after
	sessions    *protocol.Sessions // when set, key-signed answers grant sessions
	sessionWait int                // waits signed with a session
	refuseNext  int                // session requests to refuse, as after expiry
	waits       []time.Time
	calls       map[string]int
	errors      int // requests answered with an error status
}

// fakeSecret keys the fake server's verification codes, as the real
// server's secret does: the agent can only print the code it is sent.
var fakeSecret = bytes.Repeat([]byte{0x5a}, protocol.ServerSecretSize)

func newFakeServer(t *testing.T) *fakeServer {
	f := newFake(t)
	f.srv.Start()
	return f
}

// newFakeTLSServer is newFakeServer over HTTPS, with httptest's own CA.
func newFakeTLSServer(t *testing.T) *fakeServer {
	f := newFake(t)
	f.srv.StartTLS()
	return f
}

func newFake(t *testing.T) *fakeServer {
	f := &fakeServer{
		t:        t,
		verifier: &protocol.Verifier{Nonces: protocol.NewNonceCache()},
		hold:     2 * time.Second,
		changed:  make(chan struct{}),
		enrolled: make(chan struct{}),
		calls:    map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+protocol.PathEnroll, f.handleEnroll)
	mux.HandleFunc("POST "+protocol.PathWait, f.handleWait)
	mux.HandleFunc("POST "+protocol.PathAck, f.handleAck)
	f.srv = httptest.NewUnstartedServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// setState moves the device, waking any held wait.
func (f *fakeServer) setState(state, name, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state, f.name, f.reason = state, name, reason
	close(f.changed)
	f.changed = make(chan struct{})
}

// provision makes the bundle ready, as the server does once every backend step succeeded.
func (f *fakeServer) provision(b *protocol.Bundle, secrets map[string][]byte) {
	f.mu.Lock()
	f.bundle, f.secrets = b, secrets
	f.mu.Unlock()
	f.setState(string(gatehouse.StateProvisioned), b.Name, "")
}

// fail makes the next requests answer with these statuses.
func (f *fakeServer) fail(retryAfter string, statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, statuses...)
	f.retryAfter = retryAfter
}

func (f *fakeServer) waitEnrolled(t *testing.T) {
	t.Helper()
	select {
	case <-f.enrolled:
	case <-time.After(10 * time.Second):
		t.Fatal("agent did not enroll")
	}
}

// waitForCalls blocks until the agent has made n requests to path.
func (f *fakeServer) waitForCalls(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.callCount(path) < n {
		if time.Now().After(deadline) {
			t.Fatalf("agent made %d calls to %s, want %d", f.callCount(path), path, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fakeServer) callCount(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

// verifyAny checks a key signature or, where the fake grants them, a
// session's.
func (f *fakeServer) verifyAny(r *http.Request, body []byte) (*protocol.Signed, error) {
	if !protocol.HasSession(r) {
		return f.verifier.Verify(r.Context(), r, body)
	}
	if r.URL.Path != protocol.PathWait {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "a session may only wait")
	}
	f.mu.Lock()
	refuse := f.refuseNext > 0
	if refuse {
		f.refuseNext--
	}
	f.mu.Unlock()
	if refuse {
		return nil, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "session expired")
	}
	signed, err := f.verifier.VerifySession(r.Context(), r, body)
	if err == nil {
		f.mu.Lock()
		f.sessionWait++
		f.mu.Unlock()
	}
	return signed, err
}

// verify checks the signature and decodes the body strictly; it writes the
// error response itself and returns false when the request is refused.
func (f *fakeServer) verify(w http.ResponseWriter, r *http.Request, in any) (*protocol.Signed, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return nil, false
	}
	signed, err := f.verifyAny(r, body)
	if err != nil {
		f.t.Logf("fake server: refused %s: %v", r.URL.Path, err)
		f.writeError(w, http.StatusUnauthorized, gatehouse.ErrorCode(err), gatehouse.ErrorMessage(err))
		return nil, false
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		f.writeError(w, http.StatusUnsupportedMediaType, "invalid", "want application/json, got "+ct)
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(in); err != nil {
		f.writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return nil, false
	}
	if f.injectFault(w, r.URL.Path) {
		return nil, false
	}
	return signed, true
}

// injectFault answers with the next queued fault, after verification so a
// retried request still has to be freshly signed to get through.
func (f *fakeServer) injectFault(w http.ResponseWriter, path string) bool {
	f.mu.Lock()
	f.calls[path]++
	if len(f.faults) == 0 {
		f.mu.Unlock()
		return false
	}
	status := f.faults[0]
	f.faults = f.faults[1:]
	retryAfter := f.retryAfter
	f.mu.Unlock()
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	f.writeError(w, status, "unavailable", "injected fault")
	return true
}

func (f *fakeServer) writeError(w http.ResponseWriter, status int, code, msg string) {
	f.mu.Lock()
	f.errors++
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (f *fakeServer) handleEnroll(w http.ResponseWriter, r *http.Request) {
	var req protocol.EnrollRequest
	signed, ok := f.verify(w, r, &req)
	if !ok {
		return
	}
	if _, err := gatehouse.NormalizeMAC(req.MAC); err != nil || len(req.SealKey) != 32 {
		f.writeError(w, http.StatusBadRequest, "invalid", "bad mac or seal key")
		return
	}
	if err := checkCSR(req.CSR); err != nil {
		f.writeError(w, http.StatusBadRequest, "invalid", "csr: "+err.Error())
		return
	}
	f.mu.Lock()
	first := f.fingerprint == ""
	if first || f.state == "" {
		f.fingerprint, f.state = signed.Fingerprint, string(gatehouse.StatePending)
		f.code = protocol.VerificationCode(fakeSecret, signed.Fingerprint)
	}
	f.mac, f.sealKey = req.MAC, req.SealKey
	f.csrs = append(f.csrs, req.CSR)
	f.mu.Unlock()
	if first {
		close(f.enrolled)
	}
	f.writeStatus(w, signed)
}

func (f *fakeServer) handleWait(w http.ResponseWriter, r *http.Request) {
	var req protocol.WaitRequest
	signed, ok := f.verify(w, r, &req)
	if !ok || !f.known(w, signed) {
		return
	}
	f.mu.Lock()
	f.waits = append(f.waits, time.Now())
	hold := f.hold
	if f.pollAfter > 0 {
		hold = 0
	}
	f.mu.Unlock()
	timeout := time.NewTimer(hold)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		state, changed := f.state, f.changed
		f.mu.Unlock()
		if state != req.State {
			break
		}
		select {
		case <-changed:
			continue
		case <-timeout.C:
		case <-r.Context().Done():
			return
		}
		break
	}
	f.writeStatus(w, signed)
}

// known refuses keys that never enrolled, and forgets the device on demand.
func (f *fakeServer) known(w http.ResponseWriter, signed *protocol.Signed) bool {
	f.mu.Lock()
	forget := f.forgetOnce || signed.Fingerprint != f.fingerprint
	if f.forgetOnce {
		f.forgetOnce, f.state = false, ""
	}
	f.mu.Unlock()
	if forget {
		f.writeError(w, http.StatusNotFound, "not_found", "unknown device")
	}
	return !forget
}

func (f *fakeServer) handleAck(w http.ResponseWriter, r *http.Request) {
	var req protocol.AckRequest
	signed, ok := f.verify(w, r, &req)
	if !ok || !f.known(w, signed) {
		return
	}
	f.mu.Lock()
	ok = f.bundle != nil && req.Name == f.bundle.Name
	if ok {
		f.acked, f.bundle, f.secrets = req.Name, nil, nil
	}
	f.mu.Unlock()
	if !ok {
		f.writeError(w, http.StatusConflict, "conflict", "no bundle named "+req.Name)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// writeStatus answers with the current state, sealing the bundle freshly to
// the enrolled seal key when it is ready.
func (f *fakeServer) writeStatus(w http.ResponseWriter, signed *protocol.Signed) {
	f.mu.Lock()
	st := protocol.Status{
		DeviceID: "dev-1", State: f.state, Name: f.name, Reason: f.reason,
		Fingerprint: f.fingerprint, VerificationCode: f.code, PollAfter: f.pollAfter,
	}
	var err error
	if f.sessions != nil && !signed.ViaSession {
		st.Session, err = f.sessions.Grant(signed.Fingerprint, time.Now())
	}
	if err == nil && f.state == string(gatehouse.StateProvisioned) && f.bundle != nil {
		st.Bundle, err = f.sealedBundle()
	}
	f.mu.Unlock()
	if err != nil {
		f.t.Errorf("fake server: seal: %v", err)
		f.writeError(w, http.StatusInternalServerError, "internal", "seal failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

// sealedBundle is called with f.mu held.
func (f *fakeServer) sealedBundle() (*protocol.Bundle, error) {
	b := *f.bundle
	b.Sealed = map[string][]byte{}
	for field, pt := range f.secrets {
		ct, err := protocol.Seal(f.sealKey, field, pt)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		b.Sealed[field] = ct
	}
	return &b, nil
}

// approveWhenEnrolled plays the operator and the provisioning jobs.
func (f *fakeServer) approveWhenEnrolled(t *testing.T, ctx context.Context, b *protocol.Bundle, secrets map[string][]byte) {
	go func() {
		select {
		case <-f.enrolled:
		case <-ctx.Done():
			return
		}
		f.setState(string(gatehouse.StateApproved), b.Name, "")
		f.setState(string(gatehouse.StateProvisioning), b.Name, "")
		f.provision(b, secrets)
	}()
}

// checkCSR refuses what a PKI would refuse to sign: a request that does not
// parse or whose signature does not verify.
func checkCSR(s string) error {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return errors.New("not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return err
	}
	return csr.CheckSignature()
}

// lastCSR is the CSR of the latest enroll.
func (f *fakeServer) lastCSR(t *testing.T) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.csrs) == 0 {
		t.Fatal("agent has not enrolled")
	}
	return f.csrs[len(f.csrs)-1]
}
