package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/protocol"
	"gatehouse/provision"
)

// clientFrom sends from a loopback address of its own: Linux routes all of
// 127.0.0.0/8 to the loopback interface, so each is a distinct source.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 30 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

// bogusEnroll sends one validly signed enrollment with a fresh key, as a
// flood does, and returns the answer's status.
func bogusEnroll(c *http.Client, url string) (int, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return 0, err
	}
	seal := make([]byte, 32) // any 32 bytes are an X25519 public key
	rand.Read(seal)
	mac := make([]byte, 6)
	rand.Read(mac)
	mac[0] = 0x02
	body, _ := json.Marshal(protocol.EnrollRequest{MAC: net.HardwareAddr(mac).String(), SealKey: seal})
	req, err := http.NewRequest("POST", url+protocol.PathEnroll, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if err := protocol.SignRequest(req, body, key, time.Now()); err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
			return 0, fmt.Errorf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
		}
	}
	return resp.StatusCode, nil
}

// writeAgentKey writes a fresh Ed25519 device key for a real agent.
func writeAgentKey(t *testing.T, dir string) string {
	t.Helper()
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	path := filepath.Join(dir, "mender-agent.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDeviceRateLimit(t *testing.T) {
	t.Parallel()
	tb := setupWith(t, setupOpts{deviceRate: rate.Every(time.Hour), deviceBurst: 2})
	d := newDevice(t)
	tb.enroll(t, d)
	tb.enroll(t, d)

	var e apiError
	resp := sendRaw(t, d.request(t, tb.url, protocol.PathEnroll, d.enrollBody(t, d.mac)), &e)
	if resp.StatusCode != http.StatusTooManyRequests || e.Error.Code != gatehouse.ERATELIMITED {
		t.Fatalf("third request: %d %+v; want 429 rate_limited", resp.StatusCode, e)
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 3000 || s > 3600 {
		t.Fatalf("Retry-After = %q, want about an hour in whole seconds", resp.Header.Get("Retry-After"))
	}
	// The limit comes before the body is read or the signature checked: an
	// unsigned request with an oversized body is refused the same way.
	junk, _ := http.NewRequest("POST", tb.url+protocol.PathWait, bytes.NewReader(make([]byte, 2*server64K)))
	if resp := sendRaw(t, junk, &e); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("unsigned oversized request over the limit: %d, want 429 before anything else", resp.StatusCode)
	}
	// Another source has a bucket of its own, and operators are not limited.
	other := d.request(t, tb.url, protocol.PathEnroll, d.enrollBody(t, d.mac))
	resp, err := clientFrom("127.0.0.2").Do(other)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the same device from another address: %s, want 200", resp.Status)
	}
	for range 5 {
		if code := tb.call(t, tb.view, "GET", "/api/v1/devices", nil, nil); code != http.StatusOK {
			t.Fatalf("operator list: %d", code)
		}
	}
	if n := tb.count(t); n != 1 {
		t.Fatalf("%d devices stored, want 1", n)
	}
}

// server64K is the server's body bound.
const server64K = 64 << 10

// sendRaw sends req and decodes a JSON answer into out, returning the
// response for its headers.
func sendRaw(t *testing.T, req *http.Request, out any) *http.Response {
	t.Helper()
	return sendWith(t, http.DefaultClient, req, out)
}

// sendWith is sendRaw through c.
func sendWith(t *testing.T, c *http.Client, req *http.Request, out any) *http.Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if !strings.Contains(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%s %s: %d without JSON: %s", req.Method, req.URL.Path, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return resp
}

func TestPendingQueueFull(t *testing.T) {
	t.Parallel()
	tb := setupWith(t, setupOpts{pendingCap: 2})
	known := newDevice(t)
	tb.enroll(t, known)
	// The cap's last place is the reserve, kept for an address with none
	// waiting: the second gateway comes from another one.
	second := newDevice(t)
	var secondSt protocol.Status
	if resp := sendWith(t, clientFrom("127.0.0.2"), second.request(t, tb.url, protocol.PathEnroll, second.enrollBody(t, second.mac)), &secondSt); resp.StatusCode != http.StatusOK {
		t.Fatalf("second gateway, from an address with none waiting: %d", resp.StatusCode)
	}

	stranger := newDevice(t)
	var e apiError
	resp := sendRaw(t, stranger.request(t, tb.url, protocol.PathEnroll, stranger.enrollBody(t, stranger.mac)), &e)
	if resp.StatusCode != http.StatusServiceUnavailable || e.Error.Code != gatehouse.EUNAVAILABLE ||
		!strings.Contains(e.Error.Message, "pending queue is full") || resp.Header.Get("Retry-After") != "60" {
		t.Fatalf("new key past the cap: %d %+v, Retry-After %q; want 503 saying the queue is full, retry in 60 s",
			resp.StatusCode, e, resp.Header.Get("Retry-After"))
	}
	// The known gateway re-enrolls and waits as before.
	tb.enroll(t, known)
	var st protocol.Status
	body, _ := json.Marshal(protocol.WaitRequest{State: "x"})
	if code := do(t, known.request(t, tb.url, protocol.PathWait, body), &st); code != http.StatusOK || st.State != "pending" {
		t.Fatalf("wait of a known gateway while full: %d %+v", code, st)
	}
	var l provision.DeviceList
	if code := tb.call(t, tb.view, "GET", "/api/v1/devices?state=approved", nil, &l); code != http.StatusOK ||
		l.Total != 0 || l.PendingTotal != 2 || l.PendingCap != 2 {
		t.Fatalf("list: %d %+v; want the queue's size and cap whatever the filter", code, l)
	}
}

// TestFloodFromManySources floods the device API with validly signed
// enrollments of fresh keys from 200 loopback addresses while a real agent
// enrolls from 127.0.0.1. Each source gets its burst and almost nothing
// after it (one token an hour), so the pending queue grows by at most
// burst×sources; the agent, on its own address, enrolls; operators list
// throughout. Nothing here is timed.
func TestFloodFromManySources(t *testing.T) {
	t.Parallel()
	// inFlight bounds the flood's concurrency so that, on a loaded machine
	// under the race detector, no accepted request waits for the database
	// past the server's write timeout.
	const sources, perSource, burst, inFlight = 200, 10, 2, 16
	tb := setupWith(t, setupOpts{deviceRate: rate.Every(time.Hour), deviceBurst: burst, longPoll: time.Second,
		pollInterval: 500 * time.Millisecond}) // no jobs to run: leave the database to the flood
	start := time.Now()

	var codes sync.Map // status → *atomic.Int64
	countCode := func(code int) {
		v, _ := codes.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	var flood sync.WaitGroup
	slots := make(chan struct{}, inFlight)
	for i := range sources {
		c := clientFrom(fmt.Sprintf("127.0.%d.%d", 1+i/250, 2+i%250))
		flood.Go(func() {
			for range perSource {
				slots <- struct{}{}
				code, err := bogusEnroll(c, tb.url)
				<-slots
				if err != nil {
					t.Error(err)
					return
				}
				countCode(code)
			}
		})
	}

	// The real agent, started with the flood.
	dir := t.TempDir()
	cfg := agent.Config{Server: tb.url, InsecureHTTP: true, KeyPath: writeAgentKey(t, dir), OutDir: filepath.Join(dir, "out"),
		MAC: "02:00:5e:00:53:01", Once: true, RestartCommands: []string{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := agent.Run(ctx, cfg)
	var exit *agent.ExitError
	if !errors.As(err, &exit) || exit.Code != agent.ExitPending {
		t.Fatalf("agent during the flood: %v; want it enrolled and told it is pending", err)
	}
	var l provision.DeviceList
	if code := tb.call(t, tb.view, "GET", "/api/v1/devices?state=pending&limit=50", nil, &l); code != http.StatusOK {
		t.Fatalf("operator list during the flood: %d", code)
	}
	flood.Wait()
	elapsed := time.Since(start)

	get := func(code int) int64 {
		if v, ok := codes.Load(code); ok {
			return v.(*atomic.Int64).Load()
		}
		return 0
	}
	total := int64(sources * perSource)
	limited, ok := get(http.StatusTooManyRequests), get(http.StatusOK)
	if limited+ok != total {
		codes.Range(func(k, v any) bool { t.Logf("status %v: %d", k, v.(*atomic.Int64).Load()); return true })
		t.Fatalf("of %d flood requests %d were 429 and %d 200; want nothing else", total, limited, ok)
	}
	if limited <= total/2 {
		t.Errorf("only %d of %d flood requests were refused with 429", limited, total)
	}
	// Each source may have had its burst plus what an hour's rate refilled
	// while the test ran (nothing, unless it ran for an hour).
	perSourceMax := burst + int(elapsed/time.Hour)
	if code := tb.call(t, tb.view, "GET", "/api/v1/devices?state=pending&limit=1000", nil, &l); code != http.StatusOK {
		t.Fatalf("operator list after the flood: %d", code)
	}
	if bound := sources*perSourceMax + 1; l.Total > bound || l.Total > l.PendingCap || l.PendingTotal != l.Total {
		t.Fatalf("%d pending (pending_total %d, cap %d); want at most %d (burst × sources + the agent)",
			l.Total, l.PendingTotal, l.PendingCap, bound)
	}
	if int64(l.Total) != ok+1 {
		t.Errorf("%d pending, but %d flood enrollments were accepted plus the agent's", l.Total, ok)
	}
	var mine provision.DeviceList
	if tb.call(t, tb.view, "GET", "/api/v1/devices?state=pending&q=02:00:5e:00:53:01", nil, &mine); mine.Total != 1 {
		t.Errorf("the agent's gateway is not pending: %+v", mine)
	}
}
