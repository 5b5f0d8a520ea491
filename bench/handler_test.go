package bench

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/server"

	"golang.org/x/time/rate"
)

// BenchmarkWaitHandler measures the server's side of a key-signed wait
// alone: the handlers run in this process on requests signed beforehand,
// 32 at a time, with no network and no client, so what is timed is the
// handler's own work (CPU µs and allocations a request): what gatehouse
// adds to bare+verify's handler (the nonce, the status, the session grant,
// the answer, and the middleware around them) without the network's and
// the client's share of BenchmarkCheckins.
func BenchmarkWaitHandler(b *testing.B) {
	for b.Loop() {
		const keys, warm, n = 200, 2000, 20000
		rows := []struct {
			name string
			h    func() (http.Handler, func())
		}{
			{"bare + ed25519 verify", func() (http.Handler, func()) { return bareHandler(true), func() {} }},
			{"gatehouse, sqlite", func() (http.Handler, func()) { return gatehouseHandler(b) }},
		}
		fmt.Printf("\n%-24s %12s %14s   (median of %d rounds of %d waits, 32 at a time)\n", "wait handler", "µs/request", "allocs/request", checkinRounds, n)
		var base float64
		for i, row := range rows {
			var us, allocs []float64
			for range checkinRounds {
				h, stop := row.h()
				ks := enrollIn(b, h, keys)
				serveAll(b, h, signedWaits(b, ks, warm))
				reqs := signedWaits(b, ks, n)
				u, a := serveAll(b, h, reqs)
				stop()
				us, allocs = append(us, u), append(allocs, a)
			}
			if i == 0 {
				base = median(us)
			}
			fmt.Printf("%-24s %12.1f %14.0f   %.2fx the µs of bare + ed25519 verify\n", row.name, median(us), median(allocs), median(us)/base)
		}
	}
}

// gatehouseHandler is a gatehouse server's handler on a fresh SQLite file,
// logging to nowhere as an opened server with no logger does.
func gatehouseHandler(b *testing.B) (http.Handler, func()) {
	_, svc, stop := startService(b, filepath.Join(b.TempDir(), "handler.db"), provision.Config{})
	srv := server.New(svc)
	srv.DeviceRate = rate.Inf
	srv.Logger = slog.New(slog.DiscardHandler)
	return srv.Handler(), stop
}

// enrollIn enrolls n fresh keys through h and returns them.
func enrollIn(b *testing.B, h http.Handler, n int) []ed25519.PrivateKey {
	ks := make([]ed25519.PrivateKey, n)
	for i := range ks {
		_, ks[i], _ = ed25519.GenerateKey(rand.Reader)
		body := enrollBody(i)
		req := httptest.NewRequest(http.MethodPost, protocol.PathEnroll, bytes.NewReader(body))
		if err := protocol.SignRequest(req, body, ks[i], time.Now()); err != nil {
			b.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK && w.Code != http.StatusAccepted {
			b.Fatalf("enroll: %d %s", w.Code, w.Body)
		}
	}
	return ks
}

// signedWaits signs n waits, key after key, before anything is timed.
func signedWaits(b *testing.B, ks []ed25519.PrivateKey, n int) []*http.Request {
	body, _ := json.Marshal(protocol.WaitRequest{State: ""})
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodPost, protocol.PathWait, bytes.NewReader(body))
		if err := protocol.SignRequest(reqs[i], body, ks[i%len(ks)], time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	return reqs
}

// serveAll serves reqs through h, 32 at a time, and returns the CPU µs
// and the allocations per request.
func serveAll(b *testing.B, h http.Handler, reqs []*http.Request) (us, allocs float64) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	before := cpuTime(b)
	parallel(len(reqs), 32, func(i int) bool {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, reqs[i])
		if w.Code != http.StatusOK {
			b.Errorf("wait: %d %s", w.Code, w.Body)
			return false
		}
		return true
	})
	cpu := cpuTime(b) - before
	runtime.ReadMemStats(&m1)
	n := float64(len(reqs))
	return float64(cpu.Microseconds()) / n, float64(m1.Mallocs-m0.Mallocs) / n
}
