package simulate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// Server runs one simulated service over HTTP on a loopback port.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234.
	URL string
	// Faults injects HTTP-level trouble into every request.
	Faults *HTTPFaults

	handler http.Handler
	addr    string
	mu      sync.Mutex
	srv     *http.Server // nil while Down
}

// serve starts h on a free loopback port, behind the fault injector and,
// when wrap is set, behind wrap (a test's contract checker, say).
func serve(h http.Handler, wrap func(http.Handler) http.Handler) (*Server, error) {
	if wrap != nil {
		h = wrap(h)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("simulate: listen: %w", err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), Faults: &HTTPFaults{}, addr: ln.Addr().String()}
	s.handler = s.Faults.Wrap(h)
	s.start(ln)
	return s, nil
}

func (s *Server) start(ln net.Listener) {
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
}

// Down takes the service off the network, as when its host goes away: the
// listener closes, so new connections are refused, and every open
// connection is cut. Its state stays; Up brings it back on the same
// address.
func (s *Server) Down() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.srv = nil
	return err
}

// Up listens again on the address Down left, retrying for a few seconds
// should the port still be held.
func (s *Server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", s.addr)
		if err == nil {
			s.start(ln)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("simulate: listen again on %s: %w", s.addr, err)
		}
		time.Sleep(50 * time.Millisecond) // the port frees on its own; nothing to wait on
	}
}

// Close stops the server, cutting off requests held by Hang.
func (s *Server) Close() error {
	s.Faults.release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return s.srv.Close()
}

// HTTPFaults makes a simulated service slow or failing the way real ones
// are: latency, 429 with or without Retry-After, 5xx, requests that hang
// until the client gives up, and connections dropped without an answer,
// one at a time (FailNext, HangNext, LoseNext) or at a rate (SetFailRate,
// and SetMix for every kind at once). Faulted requests never reach the
// service, so they change no state, except lost ones: those act, and then
// the connection drops before the answer. Safe for concurrent use; the zero
// value injects nothing.
type HTTPFaults struct {
	mu         sync.Mutex
	latency    time.Duration
	failNext   int
	failStatus int
	retryAfter time.Duration
	failRate   float64
	rateCodes  []int
	hangNext   int
	hung       chan struct{}
	loseNext   int
	losable    func(*http.Request) bool
	requests   int
	mix        *Mix
	injected   [numFaultKinds]int
	recorder   func(Call)
	refusal    *Refusal
}

// Refusal fails the requests its Match picks, every one of them for as long
// as it is set: one gateway's calls, say, while the others' go through, as
// when a backend keeps refusing one object. Match decides afresh for each
// request, so it can lift the fault on a condition of its own (once an
// operator has asked for a retry, in the demo).
type Refusal struct {
	// Match sees the request as a Recorder does, body included. It must be
	// safe for concurrent use; it is called without the faults' lock, so it
	// may take its time.
	Match func(Call) bool
	// Status is the answer's status; 500 if 0.
	Status int
	// Message is the answer's {"message": ...}; "simulated fault" if empty.
	Message string
}

// SetRefusal fails the requests r picks from now on, replacing an earlier
// refusal; nil stops it. A request another fault already took is left to
// that fault.
func (f *HTTPFaults) SetRefusal(r *Refusal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refusal = r
}

// LoseNext makes the next n requests that match (all when match is nil) take
// effect and then lose their answer: the connection is closed before any
// byte of it, as when a proxy or the network drops it after the service
// acted. The client cannot tell this from a request that never arrived.
func (f *HTTPFaults) LoseNext(n int, match func(*http.Request) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loseNext, f.losable = n, match
}

// lose says whether r is to lose its answer.
func (f *HTTPFaults) lose(r *http.Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loseNext == 0 || (f.losable != nil && !f.losable(r)) {
		return false
	}
	f.loseNext--
	return true
}

// SetLatency delays every request by d.
func (f *HTTPFaults) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// FailNext answers the next n requests with status (e.g. 429 or 503) and, if
// retryAfter > 0, a Retry-After header in whole seconds.
func (f *HTTPFaults) FailNext(n, status int, retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext, f.failStatus, f.retryAfter = n, status, retryAfter
}

// SetFailRate answers a random fraction p of requests with one of statuses
// (default 429 and 500). 0 turns it off.
func (f *HTTPFaults) SetFailRate(p float64, statuses ...int) {
	if len(statuses) == 0 {
		statuses = []int{http.StatusTooManyRequests, http.StatusInternalServerError}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failRate, f.rateCodes = p, statuses
}

// HangNext holds the next n requests without answering until the client
// gives up (or the server closes): a timeout, as the client sees it.
func (f *HTTPFaults) HangNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hangNext = n
	if f.hung == nil {
		f.hung = make(chan struct{})
	}
}

// Requests counts every request the server received, faulted or not.
func (f *HTTPFaults) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *HTTPFaults) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hung != nil {
		close(f.hung)
		f.hung = nil
	}
}

// fault decides what happens to one request.
type fault struct {
	latency    time.Duration
	kind       FaultKind
	status     int
	retryAfter time.Duration
	hang       chan struct{}
	message    string // the answer's message; "simulated fault" if empty
}

func (f *HTTPFaults) next() fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	out := fault{latency: f.latency}
	switch {
	case f.hangNext > 0:
		f.hangNext--
		out.kind, out.hang = FaultTimeout, f.hung
	case f.failNext > 0:
		f.failNext--
		out.status, out.retryAfter = f.failStatus, f.retryAfter
		out.kind = kindOfStatus(out.status, out.retryAfter)
	case f.failRate > 0 && rand.Float64() < f.failRate:
		out.status = f.rateCodes[rand.IntN(len(f.rateCodes))]
		out.kind = kindOfStatus(out.status, 0)
	default:
		out.kind = f.draw()
		out.status = out.kind.status()
		if out.kind == Fault429RetryAfter {
			out.retryAfter = f.mix.RetryAfter
		}
		if out.kind == FaultTimeout {
			out.hang = f.hung
		}
	}
	return out
}

// kindOfStatus names the kind of a status-only fault; a status the kinds
// do not name is counted as a 500.
func kindOfStatus(status int, retryAfter time.Duration) FaultKind {
	switch {
	case status == http.StatusTooManyRequests && retryAfter > 0:
		return Fault429RetryAfter
	case status == http.StatusTooManyRequests:
		return Fault429
	case status == http.StatusServiceUnavailable:
		return Fault503
	}
	return Fault500
}

// count records that a fault of kind k was injected.
func (f *HTTPFaults) count(k FaultKind) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.injected[k]++
}

// mixLosable says whether the mix may lose r's answer.
func (f *HTTPFaults) mixLosable(r *http.Request) bool {
	f.mu.Lock()
	m := f.mix
	f.mu.Unlock()
	return m == nil || m.Losable == nil || m.Losable(r)
}

// Wrap puts the faults in front of h.
func (f *HTTPFaults) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ft := f.next()
		if ft.kind == FaultLose && !f.mixLosable(r) {
			ft.kind = FaultDrop
		}
		rec, ref := f.hooks()
		var c Call
		if rec != nil || ref != nil {
			c = capture(r)
		}
		// Before LoseNext: a refused request never reaches the service, so
		// it must not use up a lost answer meant for one that does.
		if ft.kind == FaultNone && ref != nil && ref.Match(c) {
			ft.status, ft.message = cmp.Or(ref.Status, http.StatusInternalServerError), ref.Message
			ft.kind = kindOfStatus(ft.status, 0)
		}
		if ft.kind == FaultNone && f.lose(r) {
			ft.kind = FaultLose
		}
		if rec != nil {
			c.Fault = ft.kind
			rec(c)
		}
		if wait(r.Context(), nil, ft.latency) != nil {
			return
		}
		if ft.kind != FaultNone {
			f.count(ft.kind)
		}
		switch ft.kind {
		case FaultTimeout:
			select {
			case <-ft.hang:
			case <-r.Context().Done():
			}
		case FaultDrop:
			dropConnection(w)
		case FaultLose:
			h.ServeHTTP(httptest.NewRecorder(), r)
			dropConnection(w)
		case FaultNone:
			h.ServeHTTP(w, r)
		default:
			if ft.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(ft.retryAfter.Round(time.Second)/time.Second)))
			}
			msg, _ := json.Marshal(map[string]string{"message": cmp.Or(ft.message, "simulated fault")})
			http.Error(w, string(msg), ft.status)
		}
	})
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
		return
	}
	panic(http.ErrAbortHandler) // the server closes the connection for us
}
