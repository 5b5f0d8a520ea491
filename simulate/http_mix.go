package simulate

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"time"
)

// FaultKind is one kind of trouble HTTPFaults injects into a request.
type FaultKind int

// The kinds of fault, as a client sees each: an answer it may retry, a
// request that never comes back, or a connection closed without an answer
// (the service having acted or not).
const (
	FaultNone          FaultKind = iota
	Fault429RetryAfter           // 429 Too Many Requests with a Retry-After header
	Fault429                     // 429 without Retry-After
	Fault500                     // 500 Internal Server Error
	Fault503                     // 503 Service Unavailable
	FaultTimeout                 // held without an answer until the client gives up
	FaultDrop                    // connection closed before the service saw the request
	FaultLose                    // the service acted, then the connection closed before the answer
	numFaultKinds
)

// FaultKinds lists every kind of fault, in a stable order for reports.
var FaultKinds = []FaultKind{Fault429RetryAfter, Fault429, Fault500, Fault503, FaultTimeout, FaultDrop, FaultLose}

func (k FaultKind) String() string {
	switch k {
	case FaultNone:
		return "none"
	case Fault429RetryAfter:
		return "429+retry-after"
	case Fault429:
		return "429"
	case Fault500:
		return "500"
	case Fault503:
		return "503"
	case FaultTimeout:
		return "timeout"
	case FaultDrop:
		return "dropped"
	case FaultLose:
		return "lost"
	}
	return "unknown"
}

// status is the answer a kind sends, 0 for the kinds that send none.
func (k FaultKind) status() int {
	switch k {
	case Fault429RetryAfter, Fault429:
		return http.StatusTooManyRequests
	case Fault500:
		return http.StatusInternalServerError
	case Fault503:
		return http.StatusServiceUnavailable
	}
	return 0
}

// Mix is a rate of faults and how they split among the kinds: each
// request is faulted with probability Rate, and a faulted one gets a kind
// drawn by Weights.
type Mix struct {
	Rate float64
	// Weights are relative; a kind absent or at 0 never happens.
	Weights map[FaultKind]float64
	// RetryAfter is what Fault429RetryAfter asks for; default 1 s.
	RetryAfter time.Duration
	// Losable says which requests may lose their answer (the writes, say,
	// whose repetition is what a lost answer tests); a FaultLose drawn for
	// another request drops it instead, as the client cannot tell the two
	// apart. Nil: every request.
	Losable func(*http.Request) bool
	// Max caps how many of a kind are injected; once a kind has reached its
	// cap it is left out of the draw. A kind absent is not capped. Timeouts
	// cost the client its whole deadline, so a short run caps them.
	Max map[FaultKind]int
}

// SetMix injects m from now on, replacing an earlier mix; a zero Rate
// turns it off. It counts what it injects: see Injected.
func (f *HTTPFaults) SetMix(m Mix) {
	if m.RetryAfter <= 0 {
		m.RetryAfter = time.Second
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mix = &m
	if m.Rate <= 0 {
		f.mix = nil
	}
	if f.hung == nil {
		f.hung = make(chan struct{})
	}
}

// Injected counts the faults of each kind injected so far by the mix,
// the fail rate, FailNext, HangNext and LoseNext alike.
func (f *HTTPFaults) Injected() map[FaultKind]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[FaultKind]int{}
	for k, n := range f.injected {
		if n > 0 && FaultKind(k) != FaultNone {
			out[FaultKind(k)] = n
		}
	}
	return out
}

// draw picks the mix's fault for one request, FaultNone for most; f.mu
// is held.
func (f *HTTPFaults) draw() FaultKind {
	m := f.mix
	if m == nil || rand.Float64() >= m.Rate {
		return FaultNone
	}
	var total float64
	for _, k := range FaultKinds {
		total += f.weight(k)
	}
	if total <= 0 {
		return FaultNone
	}
	x := rand.Float64() * total
	for _, k := range FaultKinds {
		if w := f.weight(k); w > 0 {
			if x < w {
				return k
			}
			x -= w
		}
	}
	return FaultNone // rounding left x at total: count it as no fault
}

// weight is k's share of the draw, 0 once k has reached its cap.
func (f *HTTPFaults) weight(k FaultKind) float64 {
	if max, capped := f.mix.Max[k]; capped && f.injected[k] >= max {
		return 0
	}
	return f.mix.Weights[k]
}

// Call is one request a simulator received, as a Recorder sees it.
type Call struct {
	Method string
	Path   string // without the query
	Query  string
	Body   []byte // the first MaxRecordedBody bytes
	Fault  FaultKind
}

// MaxRecordedBody is how much of a request's body a Recorder gets.
const MaxRecordedBody = 64 << 10

// SetRecorder has fn called with every later request, after its fault is
// decided and before the service sees it (so fn may count calls per
// object, say, from the path and body). Nil stops recording. fn must be
// safe for concurrent use.
func (f *HTTPFaults) SetRecorder(fn func(Call)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recorder = fn
}

// hooks returns the recorder and the refusal, either of them nil.
func (f *HTTPFaults) hooks() (func(Call), *Refusal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recorder, f.refusal
}

// capture describes r as a Call with the start of its body, keeping the
// whole body readable for the service.
func capture(r *http.Request) Call {
	c := Call{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery}
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, MaxRecordedBody))
		if err == nil {
			c.Body = b
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(b), r.Body), r.Body}
	}
	return c
}
