package simulate

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counted is a service that counts the requests it acted on and echoes
// their body.
type counted struct{ acted atomic.Int64 }

func (c *counted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.acted.Add(1)
	w.Write(b)
}

func startCounted(t *testing.T) (*Server, *counted) {
	t.Helper()
	svc := &counted{}
	s, err := serve(svc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, svc
}

// fresh sends one request on a new connection, so a dropped connection
// is not retried by the transport on another.
func fresh(ctx context.Context, method, url, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// Each kind, alone in the mix at rate 1, does to the client and to the
// service what its name says, and is counted.
func TestMixKinds(t *testing.T) {
	cases := []struct {
		kind       FaultKind
		status     int  // the answer, 0 for none
		retryAfter bool // a Retry-After header
		acted      bool // the service acted on the request
	}{
		{Fault429RetryAfter, 429, true, false},
		{Fault429, 429, false, false},
		{Fault500, 500, false, false},
		{Fault503, 503, false, false},
		{FaultTimeout, 0, false, false},
		{FaultDrop, 0, false, false},
		{FaultLose, 0, false, true},
	}
	for _, c := range cases {
		t.Run(c.kind.String(), func(t *testing.T) {
			s, svc := startCounted(t)
			s.Faults.SetMix(Mix{Rate: 1, Weights: map[FaultKind]float64{c.kind: 1}, RetryAfter: 2 * time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			resp, err := fresh(ctx, "POST", s.URL+"/x", "{}")
			switch {
			case c.status == 0 && err == nil:
				t.Fatalf("got %d, want no answer", resp.StatusCode)
			case c.status != 0 && err != nil:
				t.Fatalf("got %v, want %d", err, c.status)
			case c.status != 0 && resp.StatusCode != c.status:
				t.Fatalf("got %d, want %d", resp.StatusCode, c.status)
			case c.status != 0 && (resp.Header.Get("Retry-After") == "2") != c.retryAfter:
				t.Fatalf("Retry-After %q, want it set: %v", resp.Header.Get("Retry-After"), c.retryAfter)
			}
			if c.kind == FaultTimeout && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("timeout: got %v, want the client's deadline", err)
			}
			if got := svc.acted.Load() == 1; got != c.acted {
				t.Errorf("service acted: %v, want %v", got, c.acted)
			}
			if n := s.Faults.Injected()[c.kind]; n != 1 {
				t.Errorf("injected %v, want one %s", s.Faults.Injected(), c.kind)
			}
		})
	}
}

// At a rate, about that fraction of requests is faulted, split by the
// weights, and every fault is counted.
func TestMixRate(t *testing.T) {
	s, svc := startCounted(t)
	s.Faults.SetMix(Mix{Rate: 0.3, Weights: map[FaultKind]float64{Fault500: 2, Fault503: 1}})
	const n = 1000
	failed := 0
	for range n {
		resp, err := http.Post(s.URL+"/x", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failed++
		}
	}
	in := s.Faults.Injected()
	// Five standard deviations of a binomial(1000, 0.3) either side.
	if failed < 230 || failed > 370 {
		t.Errorf("%d of %d failed, want about 300", failed, n)
	}
	if in[Fault500]+in[Fault503] != failed || int(svc.acted.Load()) != n-failed {
		t.Errorf("injected %v, failed %d, acted %d", in, failed, svc.acted.Load())
	}
	if in[Fault500] < in[Fault503] {
		t.Errorf("injected %v: 500 has twice the weight of 503", in)
	}
	s.Faults.SetMix(Mix{})
	resp, err := http.Get(s.URL + "/x")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the mix is off: %v %v", resp, err)
	}
	resp.Body.Close()
}

// A capped kind stops at its cap and the draw goes to the others.
func TestMixMax(t *testing.T) {
	s, _ := startCounted(t)
	s.Faults.SetMix(Mix{Rate: 1, Weights: map[FaultKind]float64{FaultTimeout: 100, Fault500: 1}, Max: map[FaultKind]int{FaultTimeout: 2}})
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		fresh(ctx, "GET", s.URL+"/x", "")
		cancel()
	}
	in := s.Faults.Injected()
	if in[FaultTimeout] != 2 || in[Fault500] != 18 {
		t.Errorf("injected %v, want 2 timeouts and 18 500s", in)
	}
}

// A lost answer drawn for a request that may not lose it drops the
// request before the service sees it.
func TestMixLosable(t *testing.T) {
	s, svc := startCounted(t)
	s.Faults.SetMix(Mix{Rate: 1, Weights: map[FaultKind]float64{FaultLose: 1},
		Losable: func(r *http.Request) bool { return r.Method != http.MethodGet }})
	ctx := context.Background()
	if _, err := fresh(ctx, "GET", s.URL+"/x", ""); err == nil {
		t.Fatal("GET answered")
	}
	if _, err := fresh(ctx, "PUT", s.URL+"/x", "{}"); err == nil {
		t.Fatal("PUT answered")
	}
	if in := s.Faults.Injected(); svc.acted.Load() != 1 || in[FaultDrop] != 1 || in[FaultLose] != 1 {
		t.Errorf("acted %d, injected %v; want the PUT alone acted on, one drop, one lost", svc.acted.Load(), in)
	}
}

// The recorder sees each request with its body and fault, and the
// service still reads the whole body.
func TestRecorder(t *testing.T) {
	s, _ := startCounted(t)
	var mu sync.Mutex
	var calls []Call
	s.Faults.SetRecorder(func(c Call) { mu.Lock(); calls = append(calls, c); mu.Unlock() })
	s.Faults.FailNext(1, 503, 0)
	body := strings.Repeat("b", MaxRecordedBody+10)
	for range 2 {
		resp, err := http.Post(s.URL+"/p?q=1", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && string(got) != body {
			t.Errorf("the service read %d bytes of %d", len(got), len(body))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || calls[0].Fault != Fault503 || calls[1].Fault != FaultNone {
		t.Fatalf("recorded %d calls: %+v", len(calls), calls)
	}
	if c := calls[1]; c.Method != "POST" || c.Path != "/p" || c.Query != "q=1" || len(c.Body) != MaxRecordedBody {
		t.Errorf("recorded %s %s?%s with %d body bytes", c.Method, c.Path, c.Query, len(c.Body))
	}
}

// Down refuses connections and cuts held ones; Up serves again on the
// same address.
func TestDownUp(t *testing.T) {
	s, svc := startCounted(t)
	s.Faults.HangNext(1)
	// The recorder runs once the request's fault is decided, just before
	// it hangs: the hook says the request is held.
	arrived := make(chan struct{}, 1)
	s.Faults.SetRecorder(func(Call) {
		select {
		case arrived <- struct{}{}:
		default:
		}
	})
	held := make(chan error, 1)
	go func() {
		_, err := fresh(context.Background(), "GET", s.URL+"/held", "")
		held <- err
	}()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the held request never reached the server")
	}
	s.Faults.SetRecorder(nil)
	if err := s.Down(); err != nil {
		t.Fatal(err)
	}
	if err := <-held; err == nil {
		t.Error("a request held when the server went down was answered")
	}
	if _, err := fresh(context.Background(), "GET", s.URL+"/x", ""); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("while down: %v, want connection refused", err)
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if resp, err := fresh(context.Background(), "GET", s.URL+"/x", ""); err != nil || resp.StatusCode != 200 {
		t.Fatalf("after Up: %v %v", resp, err)
	}
	if svc.acted.Load() != 1 {
		t.Errorf("acted %d, want 1", svc.acted.Load())
	}
}

// A refusal fails every request it picks, by their body, with its status
// and message, before the service sees them; the others go through, and
// once Match lets a request pass the service acts on it.
func TestRefusal(t *testing.T) {
	s, svc := startCounted(t)
	var lifted atomic.Bool
	s.Faults.SetRefusal(&Refusal{Status: http.StatusForbidden, Message: "not this one",
		Match: func(c Call) bool { return c.Method == "POST" && string(c.Body) == "mine" && !lifted.Load() }})
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post(s.URL+"/p", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for range 2 {
		if code, body := post("mine"); code != http.StatusForbidden || !strings.Contains(body, `"message":"not this one"`) {
			t.Errorf("picked request: %d %q, want 403 with the refusal's message", code, body)
		}
	}
	if code, body := post("other"); code != 200 || body != "other" {
		t.Errorf("another request: %d %q, want it served whole", code, body)
	}
	if n := svc.acted.Load(); n != 1 {
		t.Errorf("the service acted on %d requests, want only the one not refused", n)
	}
	lifted.Store(true)
	if code, body := post("mine"); code != 200 || body != "mine" {
		t.Errorf("after Match let it pass: %d %q", code, body)
	}
	s.Faults.SetRefusal(&Refusal{Match: func(Call) bool { return true }})
	if code, body := post("x"); code != http.StatusInternalServerError || !strings.Contains(body, "simulated fault") {
		t.Errorf("a refusal with no status or message: %d %q, want 500 simulated fault", code, body)
	}
	s.Faults.SetRefusal(nil)
	if code, _ := post("x"); code != 200 {
		t.Errorf("after SetRefusal(nil): %d", code)
	}
	if in := s.Faults.Injected(); in[Fault500] != 3 {
		t.Errorf("injected %v, want the three refusals counted (a 403 counts as a 500)", in)
	}
}
