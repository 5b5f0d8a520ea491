package bench

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse/internal/pgtest"
	"gatehouse/protocol"
)

// BenchmarkCheckins measures signed device waits that answer at once
// against two baselines from the same run, all driven by checkins (32 in
// flight on keep-alive connections, 200 enrolled keys, 20,000 waits after
// 2,000 that warm up):
//   - bare: a net/http handler that reads the body and answers a small JSON
//     object, the floor any server here pays;
//   - bare+verify: the same handler verifying the request's Ed25519
//     signature once, as every signed request must;
//   - gatehouse on SQLite, and on PostgreSQL when GATEHOUSE_TEST_POSTGRES
//     is set, with every wait signed with the device key;
//   - the same with the waits signed with the session the enrollment
//     granted, as the agent signs its re-polls (no public-key operation).
//
// Each row runs checkinRounds times, the rows taking turns; it reports its
// best round, and the median of its rounds' ratios to the baseline's
// rounds run just before.
//
// Targets: gatehouse on SQLite at ≥ 0.8× bare+verify with key-signed
// waits, and ≥ 0.5× bare with session-signed ones.
func BenchmarkCheckins(b *testing.B) {
	for b.Loop() {
		type row struct {
			name  string
			run   func() float64
			rates []float64 // one a round; none: skipped
		}
		pg := os.Getenv(pgtest.Env) != ""
		rows := []*row{
			{name: "bare net/http", run: func() float64 { return checkins(b, bareServer(b, false)) }},
			{name: "bare + ed25519 verify", run: func() float64 { return checkins(b, bareServer(b, true)) }},
			{name: "gatehouse, sqlite", run: func() float64 {
				return checkins(b, startReplicas(b, filepath.Join(b.TempDir(), "bench.db"), 1, nil))
			}},
			{name: "gatehouse, postgres", run: func() float64 { return checkins(b, startReplicas(b, pgtest.URL(b), 1, nil)) }},
			{name: "session, sqlite", run: func() float64 {
				return sessionCheckins(b, startReplicas(b, filepath.Join(b.TempDir(), "session.db"), 1, nil))
			}},
			{name: "session, postgres", run: func() float64 { return sessionCheckins(b, startReplicas(b, pgtest.URL(b), 1, nil)) }},
		}
		// The rows take turns, round after round: on a machine others load
		// too, a burst of load then slows one round of a row rather than the
		// row, and a row's round is compared with its baseline's round of a
		// few seconds before (the median of those ratios), besides each
		// row's best round against the baseline's best.
		for range checkinRounds {
			for _, r := range rows {
				if !pg && strings.Contains(r.name, "postgres") {
					continue
				}
				r.rates = append(r.rates, r.run())
			}
		}
		bare, base := rows[0], rows[1]
		fmt.Printf("\n%-24s %12s %14s %10s %14s   (best of %d rounds; round by round: the median of each round's ratio)\n",
			"check-ins", "req/s", "vs bare+verify", "vs bare", "round by round", checkinRounds)
		for _, r := range rows {
			if len(r.rates) == 0 {
				fmt.Printf("%-24s %12s %14s\n", r.name, "skipped", "set "+pgtest.Env)
				continue
			}
			fmt.Printf("%-24s %12.0f %13.2fx %9.2fx %13.2fx\n", r.name, slices.Max(r.rates),
				slices.Max(r.rates)/slices.Max(base.rates), slices.Max(r.rates)/slices.Max(bare.rates), roundRatio(r.rates, base.rates))
		}
		fmt.Println("targets: gatehouse, sqlite >= 0.80x bare + ed25519 verify; session, sqlite >= 0.50x bare")
		b.ReportMetric(roundRatio(rows[2].rates, base.rates), "sqlite-ratio")
		b.ReportMetric(roundRatio(rows[4].rates, bare.rates), "session-ratio")
	}
}

// roundRatio is the median over the rounds of rates[i] / base[i].
func roundRatio(rates, base []float64) float64 {
	ratios := make([]float64, len(rates))
	for i := range rates {
		ratios[i] = rates[i] / base[i]
	}
	return median(ratios)
}

// checkinRounds is how many times each row of BenchmarkCheckins runs.
const checkinRounds = 5

// bareServer is a plain net/http server answering every POST with 200 and a
// small JSON body; with verify it first checks the request's signature
// headers as gatehouse would, minus the nonce's memory and the database.
// It answers enrolls too, so checkins drives it unchanged.
func bareServer(b *testing.B, verify bool) *replicaSet {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: bareHandler(verify)}
	go srv.Serve(ln)
	return &replicaSet{
		fleets: []*fleet{{url: "http://" + ln.Addr().String()}},
		stop:   func() { srv.Close() },
	}
}

// bareHandler is bareServer's handler.
func bareHandler(verify bool) http.Handler {
	answer := []byte(`{"device_id":"bench","state":"pending"}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		if verify && !verifyHeaders(r, body) {
			http.Error(w, "signature", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
}

// verifyHeaders decodes the key and signature headers and verifies the
// signature over the same string gatehouse signs: one Ed25519 verify.
func verifyHeaders(r *http.Request, body []byte) bool {
	spki, err := base64.StdEncoding.DecodeString(r.Header.Get(protocol.HeaderKey))
	if err != nil {
		return false
	}
	pub, _, err := protocol.ParsePublicKey(spki)
	if err != nil {
		return false
	}
	key, ok := pub.(ed25519.PublicKey)
	if !ok {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(r.Header.Get(protocol.HeaderSignature))
	if err != nil {
		return false
	}
	msg := protocol.StringToSign(r.Method, r.URL.RequestURI(), body,
		r.Header.Get(protocol.HeaderTimestamp), r.Header.Get(protocol.HeaderNonce))
	return ed25519.Verify(key, msg, sig)
}

// BenchmarkCheckinCPU measures what BenchmarkCheckins' rows cost in CPU
// time rather than in wall-clock rate: client and server share this
// process, so getrusage over a fixed number of waits (after a warm-up)
// gives their CPU per request together. On a machine others load, a
// row's rate swings with its neighbours' bursts while its CPU per request
// does not, so this is the figure to compare builds by.
//
// GATEHOUSE_BENCH_CPU_ROWS keeps only the rows whose name contains one of
// its |-separated words (for a profile of one row, with -cpuprofile);
// GATEHOUSE_BENCH_CPU_WAITS sets the waits measured (default 20,000).
// Each row runs checkinRounds times, the rows taking turns; the median is
// printed.
//
// Target, by CPU: key-signed at ≤ 1.25× bare+verify's µs (0.8× its rate
// with the CPU the only limit).
func BenchmarkCheckinCPU(b *testing.B) {
	for b.Loop() {
		type row struct {
			name string
			run  func() cpuRun
			runs []cpuRun
		}
		waits := envCount(b, "GATEHOUSE_BENCH_CPU_WAITS", 20000)
		sqlite := func(name string) string { return filepath.Join(b.TempDir(), name) }
		rows := []*row{
			{name: "bare net/http", run: func() cpuRun { return checkinCPU(b, bareServer(b, false), false, waits) }},
			{name: "bare + ed25519 verify", run: func() cpuRun { return checkinCPU(b, bareServer(b, true), false, waits) }},
			{name: "gatehouse, sqlite", run: func() cpuRun {
				return checkinCPU(b, startReplicas(b, sqlite("bench.db"), 1, nil), false, waits)
			}},
			{name: "gatehouse, postgres", run: func() cpuRun {
				return checkinCPU(b, startReplicas(b, pgtest.URL(b), 1, nil), false, waits)
			}},
			{name: "session, sqlite", run: func() cpuRun {
				return checkinCPU(b, startReplicas(b, sqlite("session.db"), 1, nil), true, waits)
			}},
			{name: "session, postgres", run: func() cpuRun {
				return checkinCPU(b, startReplicas(b, pgtest.URL(b), 1, nil), true, waits)
			}},
		}
		keep := func(name string) bool {
			if strings.Contains(name, "postgres") && os.Getenv(pgtest.Env) == "" {
				return false
			}
			only := os.Getenv("GATEHOUSE_BENCH_CPU_ROWS")
			if only == "" {
				return true
			}
			for w := range strings.SplitSeq(only, "|") {
				if w != "" && strings.Contains(name, w) {
					return true
				}
			}
			return false
		}
		for range checkinRounds {
			for _, r := range rows {
				if keep(r.name) {
					r.runs = append(r.runs, r.run())
				}
			}
		}
		fmt.Printf("\n%-24s %14s %8s   %s   (median of %d rounds of %d waits; load average %s)\n",
			"CPU per check-in", "µs/request", "busy", "rounds", checkinRounds, waits, loadAvg())
		for _, r := range rows {
			if len(r.runs) == 0 {
				continue
			}
			us, busy := make([]float64, len(r.runs)), make([]float64, len(r.runs))
			rounds := make([]string, len(r.runs))
			for i, c := range r.runs {
				us[i], busy[i] = c.us, c.busy
				rounds[i] = fmt.Sprintf("%.0f", c.us)
			}
			fmt.Printf("%-24s %14.0f %7.0f%%   %s\n", r.name, median(us), 100*median(busy), strings.Join(rounds, " "))
		}
		fmt.Println("busy: CPU time over wall time times GOMAXPROCS; below 100 % the cores stood idle while requests were in flight")
		fmt.Println("target: gatehouse, sqlite <= 1.25x the µs of bare + ed25519 verify")
	}
}

// cpuRun is one round of checkinCPU: CPU µs per wait, and how busy the
// cores were meanwhile (1: all of them all the time).
type cpuRun struct{ us, busy float64 }

// checkinCPU enrolls 200 keys, sends 2,000 waits to warm up, then measures
// the process's CPU time (user and system) per wait over the next n, 32 in
// flight.
func checkinCPU(b *testing.B, set *replicaSet, sessions bool, n int) cpuRun {
	defer set.stop()
	const warm = 2000
	send, stop := checkinSender(b, set, sessions)
	defer stop()
	send(warm)
	before, start := cpuTime(b), time.Now()
	send(n)
	cpu, wall := cpuTime(b)-before, time.Since(start)
	return cpuRun{
		us:   float64(cpu.Microseconds()) / float64(n),
		busy: cpu.Seconds() / (wall.Seconds() * float64(runtime.GOMAXPROCS(0))),
	}
}

// cpuTime is the user and system CPU this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}
