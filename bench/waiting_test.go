package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/internal/pgtest"
	"gatehouse/protocol"
	"gatehouse/provision"
)

// BenchmarkWaitingFleet holds a growing fleet of waiting gateways against a
// real `gatehouse serve` process (so its memory is its own) and prints, at
// each size: the server's RSS and RSS per waiting gateway, its goroutines,
// the waits it holds open, the fleet's re-poll rate and the server's CPU;
// then the approve→bundle time of fresh gateways enrolled while the fleet
// waits. The baseline is a bare net/http server in a process of its own,
// holding the same number of long polls the server holds.
//
// Every gateway speaks the device protocol as the agent does: a signed
// enroll, then waits signed with the session its answer granted, pausing
// for poll_after when the server says so. The fleet is pending: gateways
// waiting for an operator, the case that grows without bound (an approved
// gateway waits only while its steps run), so the server runs with
// --pending-cap 1000000. Enrollments run in a closed loop, a few in flight
// (GATEHOUSE_BENCH_ENROLL_CONC, default 16), which is the pace the one SQLite
// writer sustains; the table prints that rate. The gateways run in this
// process, spread over many loopback source addresses. One load process
// suffices: the server holds at most --max-held-polls requests (10,000)
// and closes the connection of every request it does not hold, so the load
// needs about as many descriptors, which the table prints beside the
// server's. GATEHOUSE_BENCH_PPROF_DIR, when set, saves the server's heap
// and goroutine profiles at each size there.
//
// GATEHOUSE_BENCH_FLEET sets the sizes (default 10000,50000,100000); the
// PostgreSQL run needs GATEHOUSE_TEST_POSTGRES.
func BenchmarkWaitingFleet(b *testing.B) {
	sizes := fleetSizes(b)
	bin := buildGatehouse(b)
	for b.Loop() {
		bare := bareLongPolls(b, protocolHeld(sizes[len(sizes)-1]))
		fmt.Printf("baseline: a bare net/http server holding %d long polls: RSS %s (%.1f KiB each)\n",
			bare.held, mib(bare.rss), float64(bare.rss)/1024/float64(bare.held))
		for _, db := range []struct{ name, dsn string }{
			{"sqlite", filepath.Join(b.TempDir(), "fleet.db")},
			{"postgres", pgDSN(b)},
		} {
			if db.dsn == "" {
				fmt.Printf("%s skipped: set %s\n", db.name, pgtest.Env)
				continue
			}
			runWaitingFleet(b, bin, db.name, db.dsn, sizes, bare)
		}
	}
}

func pgDSN(b *testing.B) string {
	if os.Getenv(pgtest.Env) == "" {
		return ""
	}
	return pgtest.URL(b)
}

func fleetSizes(b *testing.B) []int {
	v := os.Getenv("GATEHOUSE_BENCH_FLEET")
	if v == "" {
		return []int{10000, 50000, 100000}
	}
	var sizes []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("GATEHOUSE_BENCH_FLEET: %q is not a size", f)
		}
		sizes = append(sizes, n)
	}
	return sizes
}

// protocolHeld is how many of n waiting gateways the server holds by default.
func protocolHeld(n int) int { return min(n, provision.DefaultMaxHeldPolls) }

func runWaitingFleet(b *testing.B, bin, name, dsn string, sizes []int, bare bareRun) {
	srv := startServe(b, bin, dsn, "--device-rate", "0", "--pending-cap", "1000000", "--log-level", "warn",
		"--repoll-rate", strconv.Itoa(repollRate(b)))
	defer srv.stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	load := newFleetLoad(srv.url)
	fmt.Printf("\n%s: waiting fleet (--repoll-rate %d, --max-held-polls %d)\n%9s %8s %8s %9s %9s %11s %8s %8s %10s %7s %6s %10s %6s %6s %7s %6s %8s %10s %10s %7s\n", name, repollRate(b), provision.DefaultMaxHeldPolls,
		"gateways", "pending", "enrol/s", "ms/enrol", "RSS", "per gateway", "heap", "stacks", "goroutines", "held", "fds", "re-polls/s", "busy/s", "CPU", "ms/poll", "load", "load fds", "bundle p50", "bundle p99", "loadavg")
	pid := srv.cmd.Process.Pid
	for _, n := range sizes {
		// The server's CPU over the growth, per enrollment: the waits it
		// answers meanwhile are in it too, as they are in the rate.
		from, cpu0 := load.started, cpuTicks(b, pid)
		rate := load.grow(ctx, b, n)
		cpuPerEnrol := float64(cpuTicks(b, pid)-cpu0) * 1000 / clockTicks / float64(max(load.started-from, 1))
		// Let the turned-away gateways settle into their pace first.
		time.Sleep(15 * time.Second)
		w := srv.window(b, load, 10*time.Second)
		srv.profiles(b, n)
		fresh := freshApprovals(b, srv, load, 20)
		fmt.Printf("%9d %8d %8.0f %9.2f %9s %7.1f KiB %8s %8s %10d %7d %6d %10.0f %6.0f %5.0f%% %7.2f %5.0f%% %8d %10v %10v %7s\n", n, w.pending, rate, cpuPerEnrol, mib(w.rss),
			float64(w.rss)/1024/float64(n), mib(w.heap), mib(w.stacks), w.goroutines, w.held, w.fds, w.waitsPerSec, w.busyPerSec, w.cpu*100,
			w.cpu*1000/max(w.waitsPerSec, 1), w.loadCPU*100, fdsOf(os.Getpid()),
			pct(fresh, 50).Round(time.Millisecond), pct(fresh, 99).Round(time.Millisecond), loadAvg())
	}
	fmt.Printf("targets: RSS <= 2 GiB at 100,000 (<= 20 KiB each, baseline bare long poll %.1f KiB); approve→bundle p99 < 1 s\n",
		float64(bare.rss)/1024/float64(bare.held))
	if e := load.errors.Load(); e > 0 {
		fmt.Printf("%d device requests failed (see the first: %v)\n", e, load.firstErr.Load())
	}
}

// fleetLoad is the waiting gateways: each enrolls once, then waits for as
// long as the benchmark runs.
type fleetLoad struct {
	url      string
	client   *http.Client
	next     atomic.Int64  // gateway numbers taken, the fresh ones' included
	started  int           // fleet gateways started, by grow only
	enrolled atomic.Int64  // fleet gateways enrolled
	enrolls  chan struct{} // nudged after each enrollment, for grow
	waits    atomic.Int64  // wait requests answered
	busy     atomic.Int64  // answered 503 with Retry-After
	errors   atomic.Int64
	firstErr atomic.Value
	wg       sync.WaitGroup
}

func newFleetLoad(url string) *fleetLoad {
	var src atomic.Uint32
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		// Few idle connections: a wait that goes out while another's
		// connection is on its way back dials anew, and an unbounded pool
		// then fills with idle connections that cost a descriptor on each
		// side (the server ran out of them at 20,000 on the way to 50,000).
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     10 * time.Second,
		// Many loopback source addresses, so closed connections waiting out
		// TIME_WAIT never run one address out of ports.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			n := src.Add(1)
			dd := *d
			dd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 1, byte(n/250%4), byte(2+n%250))}
			return dd.DialContext(ctx, network, addr)
		},
	}
	return &fleetLoad{url: url, client: &http.Client{Transport: tr, Timeout: 5 * time.Minute},
		enrolls: make(chan struct{}, 1)}
}

// grow starts gateways until n are waiting, enrolling them as fast as the
// server answers with enrollConc enrollments in flight: a closed loop, so
// the enrollments queue for the one SQLite writer no deeper than that and
// the job queue's fetches are never starved behind them. It returns the
// enrollments made a second.
func (l *fleetLoad) grow(ctx context.Context, b *testing.B, n int) float64 {
	sem := make(chan struct{}, enrollConc(b))
	// The fleet is counted apart from the gateway numbers: the fresh
	// gateways take numbers too but leave the fleet once approved, and
	// counting them in made the run wait for ever for the 20 of each size
	// (it stopped at 49,980 on the way to 50,000).
	from, t0 := l.started, time.Now()
	for ; l.started < n; l.started++ {
		sem <- struct{}{}
		i := int(l.next.Add(1))
		l.wg.Go(func() { l.gateway(ctx, i, sem) })
	}
	// Those told to come back enroll later; wait for the last of them.
	for l.enrolled.Load() < int64(n) && ctx.Err() == nil {
		select {
		case <-l.enrolls:
		case <-ctx.Done():
		}
	}
	return float64(n-from) / time.Since(t0).Seconds()
}

// repollRate is the server's --repoll-rate: GATEHOUSE_BENCH_REPOLL_RATE,
// default 200. The held waits' own re-asks (10,000 every 30 s, 333/s) come
// on top, and the built-in 500 was more than a server sharing this 2-core
// machine with other benchmarks answered: it shed tens of thousands of waits
// with 503 on the way to 50,000 and enrolled 50 gateways a second.
func repollRate(b *testing.B) int { return envCount(b, "GATEHOUSE_BENCH_REPOLL_RATE", 200) }

// enrollConc is how many enrollments the load keeps in flight:
// GATEHOUSE_BENCH_ENROLL_CONC, default 16: with 4, on the way to 50,000 the
// waits took so much of the one database connection that 13 gateways a
// second enrolled; with 16, 80.
func enrollConc(b *testing.B) int { return envCount(b, "GATEHOUSE_BENCH_ENROLL_CONC", 16) }

// envCount is the positive whole number in the environment variable name,
// or def when it is unset.
func envCount(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s: %q is not a positive whole number", name, v)
	}
	return n
}

func (l *fleetLoad) gateway(ctx context.Context, i int, enrolled chan struct{}) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	mac := net.HardwareAddr{0x02, 0x01, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
	seal := make([]byte, 32)
	rand.Read(seal)
	body, _ := json.Marshal(protocol.EnrollRequest{MAC: mac.String(), SealKey: seal})
	st, err := l.post(ctx, protocol.PathEnroll, body, k, nil)
	// The next gateway's enrollment starts as this one is answered, even
	// when told to come back later: a busy server sets the pace, not a
	// slot held through a pause.
	<-enrolled
	for err != nil && ctx.Err() == nil {
		pause(ctx, l.backoff(err))
		st, err = l.post(ctx, protocol.PathEnroll, body, k, nil)
	}
	if err != nil {
		return
	}
	l.enrolled.Add(1)
	select {
	case l.enrolls <- struct{}{}:
	default: // grow has a nudge it has not read, which says the same
	}
	// As the agent does: waits are signed with the session the last
	// key-signed answer granted while it lasts, else with the key.
	g := st.Session
	for ctx.Err() == nil {
		body, _ := json.Marshal(protocol.WaitRequest{State: st.State})
		if g != nil && time.Now().Add(sessionMargin).Unix() >= g.Expires {
			g = nil
		}
		next, err := l.post(ctx, protocol.PathWait, body, k, g)
		if err != nil {
			g = nil
			pause(ctx, l.backoff(err))
			continue
		}
		l.waits.Add(1)
		st = next
		if st.Session != nil {
			g = st.Session
		}
		if st.PollAfter > 0 {
			pause(ctx, time.Duration(st.PollAfter)*time.Second)
		}
	}
}

// sessionMargin is the agent's: a session this close to its expiry is
// given up for the key.
const sessionMargin = 2 * time.Minute

func (l *fleetLoad) post(ctx context.Context, path string, body []byte, k ed25519.PrivateKey, g *protocol.SessionGrant) (*protocol.Status, error) {
	sign := func(req *http.Request) error { return protocol.SignRequest(req, body, k, time.Now()) }
	if g != nil {
		sign = func(req *http.Request) error { return protocol.SignSession(req, body, g, time.Now()) }
	}
	st, err := sentStatus(ctx, l.client, l.url+path, body, sign)
	var busy *busyError
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.As(err, &busy):
		l.busy.Add(1)
	case l.errors.Add(1) == 1:
		l.firstErr.Store(err)
	}
	return st, err
}

// backoff is how long a gateway pauses after err: what a busy server
// said, else the agent's 5 to 10 s.
func (l *fleetLoad) backoff(err error) time.Duration {
	var busy *busyError
	if errors.As(err, &busy) {
		return busy.retryAfter
	}
	return 5*time.Second + time.Duration(mrand.Int64N(int64(5*time.Second)))
}

// busyError is a 503 with Retry-After: the server shedding load.
type busyError struct{ retryAfter time.Duration }

func (e *busyError) Error() string { return fmt.Sprintf("busy; retry after %v", e.retryAfter) }

// signedStatus sends one device request signed with the key and decodes
// its status.
func signedStatus(ctx context.Context, c *http.Client, url string, body []byte, k ed25519.PrivateKey) (*protocol.Status, error) {
	return sentStatus(ctx, c, url, body, func(req *http.Request) error { return protocol.SignRequest(req, body, k, time.Now()) })
}

// sentStatus sends one device request signed by sign and decodes its status.
func sentStatus(ctx context.Context, c *http.Client, url string, body []byte, sign func(*http.Request) error) (*protocol.Status, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err := sign(req); err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && resp.StatusCode == http.StatusServiceUnavailable {
		return nil, &busyError{retryAfter: time.Duration(secs) * time.Second}
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: %s %s", url, resp.Status, msg)
	}
	var st protocol.Status
	return &st, json.NewDecoder(resp.Body).Decode(&st)
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// freshApprovals enrolls n new gateways one after another while the fleet
// waits, approves each once its wait is held, and returns approve→bundle.
func freshApprovals(b *testing.B, srv *serveProc, load *fleetLoad, n int) []time.Duration {
	var out []time.Duration
	for range n {
		i := int(load.next.Add(1))
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		seal := make([]byte, 32)
		rand.Read(seal)
		mac := net.HardwareAddr{0x02, 0x02, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
		body, _ := json.Marshal(protocol.EnrollRequest{MAC: mac.String(), SealKey: seal})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		st, err := signedStatus(ctx, load.client, srv.url+protocol.PathEnroll, body, k)
		for busy := (*busyError)(nil); errors.As(err, &busy) && ctx.Err() == nil; {
			pause(ctx, busy.retryAfter)
			st, err = signedStatus(ctx, load.client, srv.url+protocol.PathEnroll, body, k)
		}
		if err != nil {
			b.Fatalf("fresh enroll: %v", err)
		}
		done, sent := make(chan time.Time, 1), make(chan struct{})
		go func() {
			defer close(done)
			wait, _ := json.Marshal(protocol.WaitRequest{State: st.State})
			for first := true; ctx.Err() == nil; first = false {
				if first {
					close(sent)
				}
				got, err := signedStatus(ctx, load.client, srv.url+protocol.PathWait, wait, k)
				if busy := (*busyError)(nil); errors.As(err, &busy) {
					pause(ctx, busy.retryAfter)
				}
				if err == nil && got.Bundle != nil {
					done <- time.Now()
					return
				}
				if err == nil && got.PollAfter > 0 {
					b.Errorf("a fresh gateway was not held but told to come back in %d s", got.PollAfter)
					return
				}
				if err == nil {
					wait, _ = json.Marshal(protocol.WaitRequest{State: got.State})
				}
			}
		}()
		// Approved as its wait goes out: held or not yet arrived, the
		// bundle must reach it within the target either way.
		<-sent
		start := time.Now()
		approve(b, &fleet{url: srv.url, token: srv.token}, st.DeviceID, fmt.Sprintf("fresh-%d", i))
		if at, ok := <-done; ok {
			out = append(out, at.Sub(start))
		}
		cancel()
	}
	return out
}

// serveProc is a `gatehouse serve` child process.
type serveProc struct {
	cmd        *exec.Cmd
	url, token string
	pprof      string // its profiles' address, when GATEHOUSE_BENCH_PPROF_DIR is set
}

// profiles saves the server's heap and goroutine profiles at fleet size n
// into GATEHOUSE_BENCH_PPROF_DIR, when set.
func (p *serveProc) profiles(b *testing.B, n int) {
	dir := os.Getenv("GATEHOUSE_BENCH_PPROF_DIR")
	if dir == "" || p.pprof == "" {
		return
	}
	for name, q := range map[string]string{"heap": "heap", "goroutine": "goroutine?debug=1"} {
		resp, err := http.Get("http://" + p.pprof + "/debug/pprof/" + q)
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d", name, n)), raw, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// buildGatehouse builds the server binary once per benchmark run.
func buildGatehouse(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "gatehouse")
	cmd := exec.Command("go", "build", "-o", bin, "gatehouse/cmd/gatehouse")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("go build: %v", err)
	}
	return bin
}

func startServe(b *testing.B, bin, dsn string, args ...string) *serveProc {
	tok := exec.Command(bin, "tokens", "create", "--db", dsn, "--name", "bench", "--role", "operator")
	out, err := tok.Output()
	if err != nil {
		b.Fatalf("tokens create: %v", err)
	}
	addr := freeAddr(b)
	cmd := exec.Command(bin, append([]string{"serve", "--db", dsn, "--listen", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	var pprofAddr string
	if os.Getenv("GATEHOUSE_BENCH_PPROF_DIR") != "" {
		pprofAddr = freeAddr(b)
		cmd.Env = append(os.Environ(), "GATEHOUSE_PPROF="+pprofAddr)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &serveProc{cmd: cmd, url: "http://" + addr, token: strings.TrimSpace(string(out)), pprof: pprofAddr}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			b.Fatalf("gatehouse serve is not ready after a minute: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (p *serveProc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// fleetWindow is what one measuring window saw.
type fleetWindow struct {
	rss, heap, stacks         int64
	goroutines, held, fds     int
	pending                   int
	busyPerSec                float64
	waitsPerSec, cpu, loadCPU float64
}

func (p *serveProc) window(b *testing.B, load *fleetLoad, d time.Duration) fleetWindow {
	pid := p.cmd.Process.Pid
	self := os.Getpid()
	cpu0, load0, waits0, busy0, t0 := cpuTicks(b, pid), cpuTicks(b, self), load.waits.Load(), load.busy.Load(), time.Now()
	time.Sleep(d)
	cpu1, load1, waits1, busy1, el := cpuTicks(b, pid), cpuTicks(b, self), load.waits.Load(), load.busy.Load(), time.Since(t0)
	m := p.metrics(b)
	return fleetWindow{
		rss:         rssOf(b, pid),
		fds:         fdsOf(pid),
		pending:     int(m[`gatehouse_enrollments{state="pending"}`]),
		busyPerSec:  float64(busy1-busy0) / el.Seconds(),
		heap:        int64(m["go_memstats_heap_inuse_bytes"]),
		stacks:      int64(m["go_memstats_stack_inuse_bytes"]),
		loadCPU:     float64(load1-load0) / clockTicks / el.Seconds(),
		goroutines:  int(m["go_goroutines"]),
		held:        int(m["gatehouse_long_polls_held"]),
		waitsPerSec: float64(waits1-waits0) / el.Seconds(),
		cpu:         float64(cpu1-cpu0) / clockTicks / el.Seconds(),
	}
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times on Linux.
const clockTicks = 100

func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The command name may hold spaces; the fields after its ")" do not.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

// loadAvg is the machine's one-minute load average, for the reader to
// judge how much of the machine the run had.
func loadAvg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// fdsOf is how many descriptors process pid has open.
func fdsOf(pid int) int {
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(fds)
}

func rssOf(b *testing.B, pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// metrics reads the unlabelled samples of the server's /metrics.
func (p *serveProc) metrics(b *testing.B) map[string]float64 {
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") && !strings.HasPrefix(name, "gatehouse_enrollments{") {
			continue
		}
		out[name], _ = strconv.ParseFloat(v, 64)
	}
	return out
}

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// bareRun is the baseline: a bare net/http server process holding long polls.
type bareRun struct {
	held int
	rss  int64
}

// bareLongPolls runs this test binary's bare server (see TestMain) in a
// process of its own and holds n long polls on it.
func bareLongPolls(b *testing.B, n int) bareRun {
	addr := freeAddr(b)
	cmd := exec.Command(os.Args[0], "-test.run", "^$", "-test.bench", "^$")
	cmd.Env = append(os.Environ(), bareServerEnv+"="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c := newFleetLoad("http://" + addr).client
	for {
		if resp, err := http.Get("http://" + addr + "/ready"); err == nil {
			resp.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var started sync.WaitGroup
	for range n {
		started.Add(1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/wait", strings.NewReader(`{"state":"pending"}`))
			started.Done()
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	started.Wait()
	for {
		resp, err := http.Get("http://" + addr + "/held")
		if err != nil {
			b.Fatal(err)
		}
		v, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if held, _ := strconv.Atoi(string(v)); held >= n {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return bareRun{held: n, rss: rssOf(b, cmd.Process.Pid)}
}

// bareServerEnv, when set, makes this test binary serve bare long polls at
// its address instead of running tests.
const bareServerEnv = "GATEHOUSE_BENCH_BARE_SERVER"

func TestMain(m *testing.M) {
	if addr := os.Getenv(bareServerEnv); addr != "" {
		serveBare(addr)
		return
	}
	os.Exit(m.Run())
}

// serveBare holds every POST /wait until the process ends, reading its
// body first as the real server does.
func serveBare(addr string) {
	var held atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /held", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, held.Load()) })
	mux.HandleFunc("POST /wait", func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		held.Add(1)
		<-r.Context().Done()
	})
	srv := &http.Server{Addr: addr, Handler: mux}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
