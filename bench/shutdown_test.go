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

	"golang.org/x/time/rate"

	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/server"
	"gatehouse/store"
)

// BenchmarkShutdown measures a shutdown as serve does it on SIGTERM (stop
// HTTP, answering held long polls at once; stop the job runner with its
// grace; close the database) while 1,000 gateways hold signed long polls
// open over loopback, each on its own connection, as the agents' waits do.
// The baseline is the same shutdown of the same kind of server with no poll
// held, measured in the same run. Target: under 2 s with 1,000 held.
func BenchmarkShutdown(b *testing.B) {
	const held = 1000
	for b.Loop() {
		base := shutdownHolding(b, 0)
		full := shutdownHolding(b, held)
		fmt.Printf("shutdown, no long poll held:   %v (HTTP %v)\n", base.took.Round(time.Millisecond), base.http.Round(time.Millisecond))
		fmt.Printf("shutdown, %d long polls held: %v (HTTP %v; target < 2s), %.2fx the baseline; %d answered 503 with Retry-After, the last after %v\n",
			held, full.took.Round(time.Millisecond), full.http.Round(time.Millisecond), float64(full.took)/float64(base.took),
			full.answered503, full.lastAnswer.Round(time.Millisecond))
		b.ReportMetric(float64(full.took.Microseconds())/1000, "shutdown-ms")
		b.ReportMetric(float64(base.took.Microseconds())/1000, "baseline-ms")
	}
}

type shutdownRun struct {
	took        time.Duration // shutdown start → database closed
	http        time.Duration // shutdown start → HTTP server stopped
	lastAnswer  time.Duration // shutdown start → the last held poll answered
	answered503 int
}

// shutdownHolding starts a server, has n enrolled gateways each hold a long
// poll, then shuts it down and times it.
func shutdownHolding(b *testing.B, n int) shutdownRun {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	notes := &countingNotifier{Notifier: provision.NewLocalNotifier()}
	svc, err := provision.New(db, provision.Config{Notifier: notes})
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(svc)
	srv.Addr, srv.DeviceRate = "127.0.0.1:0", rate.Inf // one loopback address for all
	if err := svc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := srv.Open(); err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n + 1}}
	keys := enrollKeys(b, client, srv.URL(), n)

	start := make(chan time.Time, 1)
	answers := make(chan int, n)
	lasts := make(chan time.Duration, n)
	var polls sync.WaitGroup
	for _, k := range keys {
		polls.Go(func() {
			code := signedWait(b, client, srv.URL(), k)
			t0 := <-start
			start <- t0
			answers <- code
			lasts <- time.Since(t0)
		})
	}
	waitHeld(b, notes, n)

	t0 := time.Now()
	start <- t0
	stopCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := srv.Close(stopCtx); err != nil {
		b.Fatalf("stop serving: %v", err)
	}
	cancel()
	httpTook := time.Since(t0)
	jobsCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	if err := svc.Shutdown(jobsCtx, 10*time.Second); err != nil {
		b.Fatalf("stop the job runner: %v", err)
	}
	cancel()
	if err := db.Close(); err != nil {
		b.Fatalf("close the database: %v", err)
	}
	run := shutdownRun{took: time.Since(t0), http: httpTook}
	polls.Wait()
	close(answers)
	close(lasts)
	for c := range answers {
		if c == http.StatusServiceUnavailable {
			run.answered503++
		}
	}
	for d := range lasts {
		run.lastAnswer = max(run.lastAnswer, d)
	}
	if run.answered503 != n {
		b.Fatalf("%d of %d held polls answered 503", run.answered503, n)
	}
	return run
}

// enrollKeys enrolls n gateways with fresh keys over the device API, a few
// at a time, and returns their keys.
func enrollKeys(b *testing.B, c *http.Client, url string, n int) []ed25519.PrivateKey {
	keys := make([]ed25519.PrivateKey, n)
	parallel(n, 8, func(i int) bool {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			b.Error(err)
			return false
		}
		seal := make([]byte, 32)
		rand.Read(seal)
		mac := net.HardwareAddr{0x02, 0, 0, 0x5d, byte(i >> 8), byte(i)}
		body, _ := json.Marshal(protocol.EnrollRequest{MAC: mac.String(), SealKey: seal})
		if code := signedPost(b, c, url+protocol.PathEnroll, body, k); code != http.StatusOK {
			b.Errorf("enroll %d: status %d", i, code)
			return false
		}
		keys[i] = k
		return true
	})
	if b.Failed() {
		b.FailNow()
	}
	return keys
}

// signedWait holds a long poll for a pending gateway and returns its status
// code once it is answered.
func signedWait(b *testing.B, c *http.Client, url string, k ed25519.PrivateKey) int {
	body, _ := json.Marshal(protocol.WaitRequest{State: "pending"})
	return signedPost(b, c, url+protocol.PathWait, body, k)
}

func signedPost(b *testing.B, c *http.Client, url string, body []byte, k ed25519.PrivateKey) int {
	return post(b, c, url, body, func(req *http.Request) error { return protocol.SignRequest(req, body, k, time.Now()) })
}

// post sends one device request signed by sign and returns its status code.
func post(b *testing.B, c *http.Client, url string, body []byte, sign func(*http.Request) error) int {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	if err := sign(req); err != nil {
		b.Error(err)
		return 0
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		b.Error("503 without Retry-After")
	}
	return resp.StatusCode
}

// waitHeld waits until n long polls have subscribed to their devices, that
// is, are held by the server.
func waitHeld(b *testing.B, notes *countingNotifier, n int) {
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for notes.live.Load() < int64(n) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d long polls held after a minute", notes.live.Load(), n)
		}
		<-tick.C
	}
}

// countingNotifier counts the subscriptions alive: one per held long poll.
type countingNotifier struct {
	provision.Notifier
	live atomic.Int64
}

func (n *countingNotifier) Subscribe(id string) (<-chan struct{}, func()) {
	ch, stop := n.Notifier.Subscribe(id)
	n.live.Add(1)
	var once sync.Once
	return ch, func() {
		once.Do(func() { n.live.Add(-1) })
		stop()
	}
}
