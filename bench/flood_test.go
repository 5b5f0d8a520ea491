package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/server"
)

// BenchmarkFlood floods a server running the default flood limits (1
// request a second per source address with bursts of 20, 10,000 pending at
// most) with 50,000 validly signed enrollments of fresh keys from 200
// loopback addresses. Meanwhile real agents enroll, each from a loopback
// address of its own as gateways on different sites would (127.0.2.x), and
// an operator lists the Pending page. It prints the agents' enroll-to-pending
// time and the operator list's latency during the flood and, as the
// baseline measured in the same run, on the same server before the flood;
// then how the flood was answered and how many gateways were left pending.
func BenchmarkFlood(b *testing.B) {
	const bogus, sources, inFlight, agents = 50_000, 200, 64, 10
	for b.Loop() {
		f, stop := startFloodServer(b)
		dir := b.TempDir()
		baseEnroll := enrollAgents(b, f.url, dir, 0, agents)
		baseList := listLoop(b, f, func(n int) bool { return n < 200 })

		var flooding atomic.Bool
		flooding.Store(true)
		var answers sync.Map // status → *atomic.Int64
		start := time.Now()
		floodDone := make(chan struct{})
		go func() {
			defer close(floodDone)
			floodEnroll(b, f.url, bogus, sources, inFlight, &answers)
		}()
		var during []time.Duration
		listDone := make(chan struct{})
		go func() {
			defer close(listDone)
			during = listLoop(b, f, func(int) bool { return flooding.Load() })
		}()
		// Agents enroll one after another through the flood, as gateways
		// booting at any moment of it would.
		var duringEnroll []time.Duration
		pace := time.NewTicker(500 * time.Millisecond)
		for i := range agents {
			<-pace.C
			duringEnroll = append(duringEnroll, enrollAgents(b, f.url, dir, agents+i, 1)...)
		}
		pace.Stop()
		<-floodDone
		took := time.Since(start)
		flooding.Store(false)
		<-listDone

		l, err := f.svc.ListDevices(context.Background(), provision.ListFilter{State: gatehouse.StatePending, Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		stop()
		count := func(code int) int64 {
			if v, ok := answers.Load(code); ok {
				return v.(*atomic.Int64).Load()
			}
			return 0
		}
		fmt.Printf("flood: %d enrollments from %d addresses in %v (%.0f/s): %d answered 200, %d 429, %d 503, %d no answer\n",
			bogus, sources, took.Round(time.Millisecond), float64(bogus)/took.Seconds(),
			count(200), count(429), count(503), count(0))
		answers.Range(func(k, v any) bool {
			if c := k.(int); c != 0 && c != 200 && c != 429 && c != 503 {
				fmt.Printf("flood: %d answered %d\n", v.(*atomic.Int64).Load(), c)
			}
			return true
		})
		fmt.Printf("pending at the end: %d (cap %d; at most 20 × %d addresses in the first burst, then %d a second)\n",
			l.PendingTotal, l.PendingCap, sources, sources)
		report(b, "agent enroll, no flood", baseEnroll)
		report(b, "agent enroll, flood", duringEnroll)
		report(b, "list, no flood", baseList)
		report(b, "list, flood", during)
		fmt.Printf("agent enroll-to-pending during the flood: max %v (target < 5s), %.2fx the baseline's max\n",
			pct(duringEnroll, 100).Round(time.Millisecond), float64(pct(duringEnroll, 100))/float64(pct(baseEnroll, 100)))
		fmt.Printf("operator list p95 during the flood: %v (target < 200ms), %.2fx the baseline's %v\n",
			pct(during, 95).Round(100*time.Microsecond), float64(pct(during, 95))/float64(pct(baseList, 95)),
			pct(baseList, 95).Round(100*time.Microsecond))
		b.ReportMetric(float64(pct(duringEnroll, 100).Milliseconds()), "enroll-max-ms")
		b.ReportMetric(float64(pct(during, 95).Microseconds())/1000, "list-p95-ms")
		b.ReportMetric(float64(l.PendingTotal), "pending")
	}
}

func startFloodServer(b *testing.B) (*fleet, func()) {
	_, svc, stopService := startService(b, filepath.Join(b.TempDir(), "bench.db"), provision.Config{})
	srv, stopServer := serveOn(b, svc, server.DefaultDeviceRate) // the default limits
	token, _, err := svc.CreateToken(context.Background(), provision.TokenSpec{Name: "bench", Role: gatehouse.RoleViewer})
	if err != nil {
		b.Fatal(err)
	}
	return &fleet{url: srv.URL(), token: token, svc: svc}, func() {
		stopServer()
		stopService()
	}
}

// enrollAgents runs n real agents one after the other and returns how long
// each took from start to holding its pending status (the verification
// code it prints), then stops it.
func enrollAgents(b *testing.B, url, dir string, first, n int) []time.Duration {
	var out []time.Duration
	for i := first; i < first+n; i++ {
		cfg := agentConfig(b, url, dir, i)
		cfg.HTTPClient = agent.NewHTTPClient()
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(1+i))}, Timeout: 10 * time.Second}
		cfg.HTTPClient.Transport.(*http.Transport).DialContext = d.DialContext
		banner := &firstWrite{ch: make(chan struct{})}
		cfg.Banner = banner
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		start := time.Now()
		done := make(chan error, 1)
		go func() { _, err := agent.Run(ctx, cfg); done <- err }()
		select {
		case <-banner.ch:
			out = append(out, time.Since(start))
		case err := <-done:
			b.Fatalf("agent %d ended before it was pending: %v", i, err)
		}
		cancel()
		<-done
	}
	return out
}

// firstWrite closes ch when the agent first prints its banner.
type firstWrite struct {
	once sync.Once
	ch   chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.ch) })
	return len(p), nil
}

// listLoop lists the first Pending page as the web page does, one request
// after another while more(n) holds, and returns each latency.
func listLoop(b *testing.B, f *fleet, more func(n int) bool) []time.Duration {
	var out []time.Duration
	// A page refreshing on live events, not a busy loop.
	pace := time.NewTicker(20 * time.Millisecond)
	defer pace.Stop()
	for more(len(out)) {
		req, _ := http.NewRequest("GET", f.url+"/api/v1/devices?state=pending&limit=50", nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("list: %s", resp.Status)
		}
		out = append(out, time.Since(start))
		<-pace.C
	}
	return out
}

// floodEnroll sends n signed enrollments of fresh keys, spread over sources
// loopback addresses (127.0.1.x), inFlight at a time, counting answers.
func floodEnroll(b *testing.B, url string, n, sources, inFlight int, answers *sync.Map) {
	clients := make([]*http.Client, sources)
	for i := range clients {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(2+i))}}
		// Idle connections are dropped before the server's idle timeout
		// would close them under a request.
		clients[i] = &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: inFlight,
			IdleConnTimeout: 30 * time.Second}}
	}
	parallel(n, inFlight, func(i int) bool {
		code, err := signedEnroll(clients[i%sources], url)
		if err != nil {
			code = 0 // no answer: counted, not fatal, so one reset does not void the run
		}
		v, _ := answers.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		return true
	})
}

func signedEnroll(c *http.Client, url string) (int, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return 0, err
	}
	seal := make([]byte, 32)
	rand.Read(seal)
	mac := make([]byte, 6)
	rand.Read(mac)
	mac[0] = 0x02
	body, _ := json.Marshal(protocol.EnrollRequest{MAC: net.HardwareAddr(mac).String(), SealKey: seal})
	req, _ := http.NewRequest("POST", url+protocol.PathEnroll, bytes.NewReader(body))
	if err := protocol.SignRequest(req, body, key, time.Now()); err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
