package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse"
	"gatehouse/client"
)

func init() {
	register(Scenario{Name: "flood", Order: 50, Run: runFlood,
		About: "bogus signed enrollments of fresh keys from 200 loopback addresses against serve with a small " +
			"--pending-cap while real agents enroll from addresses of their own: pending, database and memory " +
			"stay bounded by the cap, every agent is pending within 5 s (the queue's reserve keeps places for new addresses)"})
}

// floodPlan is one flood's size.
type floodPlan struct {
	bogus    int // signed enrollments of fresh keys
	sources  int // loopback addresses they come from
	inFlight int // requests the flood keeps open at once
	agents   int // real agents enrolling during it
	cap      int // serve's --pending-cap
}

func planFlood(size Size) floodPlan {
	return floodPlan{bogus: size.Pick(5_000, 50_000), sources: 200, inFlight: 64, agents: size.Pick(4, 10),
		cap: size.Pick(500, 2_000)}
}

// What the flood's bounds allow, with room to spare over measured runs:
// 2,000 pending gateways and 46,000 nonces took 11.3 MiB of database and
// log, and the server's RSS rose by some 25 MiB, the same at 500 pending.
const (
	agentAnswerWithin = 5 * time.Second // the target for a real agent
	dbPerDevice       = 4 << 10         // database bytes a stored gateway may take: device, key, event, indexes
	dbPerNonce        = 512             // and a request's nonce, which expires 10 min after it
	dbSlack           = 8 << 20         // the write-ahead log between checkpoints (4 MiB), free pages
	rssOverBase       = 96 << 20        // memory the flood may add above the idle server's
	rssPerPending     = 8 << 10         // and per pending gateway
)

func runFlood(ctx context.Context, h *Harness, size Size) (*Result, error) {
	start := time.Now()
	r := &Result{}
	err := flood(ctx, h, planFlood(size), r)
	r.Took = time.Since(start)
	return r, err
}

func flood(ctx context.Context, h *Harness, p floodPlan, r *Result) error {
	b, err := h.StartBackends(50 * time.Millisecond)
	if err != nil {
		return err
	}
	defer b.Close()
	srv, err := h.StartServer(ctx, ServerOptions{Config: b.EnvFile, Args: []string{"--pending-cap", strconv.Itoa(p.cap)}})
	if err != nil {
		return err
	}
	defer srv.Stop()
	op, err := srv.OperatorClient(ctx, "flood")
	if err != nil {
		return err
	}
	gws, err := h.NewGateways(p.agents, 0)
	if err != nil {
		return err
	}
	base, err := SampleServer(ctx, srv, time.Now())
	if err != nil {
		return err
	}
	sampler := StartSampler(ctx, srv, 200*time.Millisecond)
	fl := startBogus(ctx, srv.URL, p)
	outcomes := enrollDuringFlood(ctx, srv.URL, gws, fl, p.bogus)
	<-fl.done
	samples, unanswered, sampleErr := sampler.Stop()
	if len(samples) == 0 {
		return fmt.Errorf("sampling the server: %w", sampleErr)
	}

	r.Operations = p.bogus
	r.Faults = p.bogus - fl.count(200)
	r.Note("bogus answered %s", fl.summary())
	_, hiScrape := Extremes(samples)
	r.Note("metrics scrapes unanswered in 10s %d/%d, slowest %v", unanswered, len(samples), hiScrape.Scrape.Round(time.Millisecond))
	r.Details = append(r.Details, fmt.Sprintf("flood: %d signed enrollments of fresh keys from %d addresses, %d in flight, --pending-cap %d; sampled every 200ms:",
		p.bogus, p.sources, p.inFlight, p.cap))
	r.Details = append(r.Details, SampleTable(samples, max(len(samples)/20, 1))...)

	list, err := op.ListDevices(ctx, client.ListOptions{State: gatehouse.StatePending, Limit: 1})
	if err != nil {
		return err
	}
	return errors.Join(checkAgents(r, outcomes), checkBounds(ctx, r, p, base, samples, list.PendingTotal, srv))
}

// bogusFlood is the flood in progress: how many requests were sent and
// how each was answered (0: no answer).
type bogusFlood struct {
	sent    atomic.Int64
	mu      sync.Mutex
	answers map[int]int
	done    chan struct{}
}

func (f *bogusFlood) count(status int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.answers[status]
}

func (f *bogusFlood) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	codes := make([]int, 0, len(f.answers))
	for c := range f.answers {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		label := strconv.Itoa(c)
		if c == 0 {
			label = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s %d", label, f.answers[c]))
	}
	return strings.Join(parts, " ")
}

// startBogus sends p.bogus signed enrollments of fresh keys, spread over
// p.sources addresses (127.0.1.x), p.inFlight at a time.
func startBogus(ctx context.Context, url string, p floodPlan) *bogusFlood {
	f := &bogusFlood{answers: map[int]int{}, done: make(chan struct{})}
	senders := make([]*bogusSender, p.sources)
	for i := range senders {
		senders[i] = newBogusSender(url, loopbackIP(1, i), p.inFlight)
	}
	var wg sync.WaitGroup
	for range p.inFlight {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(f.sent.Add(1)) - 1
				if i >= p.bogus {
					return
				}
				code, err := senders[i%len(senders)].enroll(ctx)
				if err != nil {
					code = 0 // counted, not fatal: one reset must not void the run
				}
				f.mu.Lock()
				f.answers[code]++
				f.mu.Unlock()
			}
		})
	}
	go func() {
		wg.Wait()
		for _, s := range senders {
			s.close()
		}
		close(f.done)
	}()
	return f
}

// agentOutcome is how one real agent fared: its first answer and, when it
// was let in, how long it took to be pending.
type agentOutcome struct {
	gw        *Gateway
	answerIn  time.Duration
	status    int
	pendingIn time.Duration
	err       error
}

// enrollDuringFlood starts the agents one by one, each when the flood is a
// further share of the way through, so all enroll while it runs; each
// runs until it is pending or refused, then stops.
func enrollDuringFlood(ctx context.Context, url string, gws []*Gateway, fl *bogusFlood, bogus int) []*agentOutcome {
	out := make([]*agentOutcome, len(gws))
	var wg sync.WaitGroup
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for i, g := range gws {
		for int(fl.sent.Load()) < (i+1)*bogus/(len(gws)+1) {
			select {
			case <-fl.done:
			case <-tick.C:
				continue
			}
			break
		}
		out[i] = &agentOutcome{gw: g}
		wg.Go(func() { out[i].watch(ctx, url, loopbackIP(2, i)) })
	}
	wg.Wait()
	return out
}

// watch runs the agent until its enrollment is answered with its pending
// status or refused, for up to a minute.
func (o *agentOutcome) watch(ctx context.Context, url string, ip net.IP) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	w := StartAgent(ctx, o.gw, url, ip)
	defer func() { cancel(); <-w.Done }()
	select {
	case <-w.Answered:
	case <-w.Done:
		o.err = fmt.Errorf("agent %s ended unanswered: %w", o.gw.MAC, w.Err())
		return
	case <-ctx.Done():
		o.err = fmt.Errorf("agent %s: no answer to its enrollment in a minute", o.gw.MAC)
		return
	}
	o.answerIn, o.status = w.FirstAnswer()
	if o.status != 200 {
		return
	}
	select {
	case <-w.Pending:
		o.pendingIn = w.PendingIn()
	case <-ctx.Done():
		o.err = fmt.Errorf("agent %s: enrollment answered 200 but no verification code in a minute", o.gw.MAC)
	}
}

// checkAgents wants every agent, each from an address of its own, pending
// within agentAnswerWithin: the flood fills the pending queue up to its
// reserve, whose places are kept for addresses with none waiting, so it
// can neither starve an agent (429, a timeout) nor lock it out (503).
func checkAgents(r *Result, outcomes []*agentOutcome) error {
	var errs []error
	var pending, answers []time.Duration
	for _, o := range outcomes {
		if o.err != nil {
			errs = append(errs, o.err)
			continue
		}
		answers = append(answers, o.answerIn)
		if o.status != 200 {
			errs = append(errs, fmt.Errorf("agent %s answered %d during the flood: the pending queue's reserve and its own address's rate limit must let it in", o.gw.MAC, o.status))
			continue
		}
		pending = append(pending, o.pendingIn)
		if o.pendingIn >= agentAnswerWithin {
			errs = append(errs, fmt.Errorf("agent %s pending after %v, want < %v", o.gw.MAC, o.pendingIn.Round(time.Millisecond), agentAnswerWithin))
		}
	}
	r.Note("agents pending %d/%d (p50 %v max %v)", len(pending), len(outcomes), pct(pending, 50), pct(pending, 100))
	r.Note("agent answer p50 %v max %v", pct(answers, 50), pct(answers, 100))
	return errors.Join(errs...)
}

// checkBounds wants the pending count never past the cap, the database
// holding no more than the cap's worth of gateways (and the nonces of the
// requests the rate limit let through), and the memory bounded likewise.
func checkBounds(ctx context.Context, r *Result, p floodPlan, base Sample, samples []Sample, pending int, srv *Server) error {
	var errs []error
	_, hi := Extremes(samples)
	end := samples[len(samples)-1]
	r.Note("pending %d (cap %d, max sampled %d)", pending, p.cap, hi.Pending)
	r.Note("RSS max %s (idle %s)", MiB(hi.RSS), MiB(base.RSS))
	r.Note("DB %s (empty %s, max %s)", MiB(end.DB), MiB(base.DB), MiB(hi.DB))
	if pending > p.cap || hi.Pending > p.cap {
		errs = append(errs, fmt.Errorf("%d pending (max sampled %d), past the cap of %d", pending, hi.Pending, p.cap))
	}
	if limit := base.RSS + rssOverBase + int64(p.cap)*rssPerPending; hi.RSS > limit {
		errs = append(errs, fmt.Errorf("RSS reached %s, past the %s allowed", MiB(hi.RSS), MiB(limit)))
	}
	if i := slices.IndexFunc(samples, func(s Sample) bool { return s.Pending >= p.cap }); i >= 0 {
		r.Note("full at %v", samples[i].At.Round(100*time.Millisecond))
	}
	errs = append(errs, checkRows(ctx, r, p, base, hi, srv.DB))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\nserver log:\n%s", err, srv.LogTail(10))
	}
	return nil
}

// pct is the p-th percentile of ds, rounded for a table.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min((len(s)*p+99)/100, len(s)) - 1
	return s[max(i, 0)].Round(time.Millisecond)
}

// checkRows counts what the flood left in the database: at most the cap's
// worth of gateways plus the agents, an event each, and one nonce per
// request the rate limit let through (pruned 10 min after the request, so
// a longer flood holds 10 minutes' worth). The file's size must fit them.
func checkRows(ctx context.Context, r *Result, p floodPlan, base, hi Sample, path string) error {
	rows, err := countRows(ctx, path, "devices", "device_events", "nonces", "audit_log")
	if err != nil {
		return err
	}
	r.Note("rows devices %d events %d nonces %d audit %d", rows["devices"], rows["device_events"], rows["nonces"], rows["audit_log"])
	var errs []error
	if rows["devices"] > p.cap+p.agents {
		errs = append(errs, fmt.Errorf("%d devices stored, past the cap of %d and %d agents", rows["devices"], p.cap, p.agents))
	}
	if rows["device_events"] > 2*rows["devices"]+10 {
		errs = append(errs, fmt.Errorf("%d device events for %d devices: refusals must store nothing", rows["device_events"], rows["devices"]))
	}
	if rows["audit_log"] > 10+p.agents {
		errs = append(errs, fmt.Errorf("%d audit entries: refusals must not each add one", rows["audit_log"]))
	}
	limit := base.DB + int64(rows["devices"])*dbPerDevice + int64(rows["nonces"])*dbPerNonce + dbSlack
	if hi.DB > limit {
		errs = append(errs, fmt.Errorf("database reached %s, past the %s its %d devices and %d nonces allow", MiB(hi.DB), MiB(limit), rows["devices"], rows["nonces"]))
	}
	return errors.Join(errs...)
}
