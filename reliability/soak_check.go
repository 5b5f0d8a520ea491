package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"

	"gatehouse"
	"gatehouse/client"
)

// warmUp takes one gateway through enrollment, approval, its bundle and
// decommission, before the baseline is sampled.
func warmUp(ctx context.Context, op *client.Client, url string, sg *soakGateway) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	sg.agent = StartAgent(ctx, sg.g, url, loopbackIP(9, 0))
	defer sg.agent.Stop()
	pending, err := WaitDevices(ctx, op, gatehouse.StatePending, 1, time.Minute)
	if err != nil {
		return err
	}
	d := pending[sg.g.MAC]
	if d == nil {
		return fmt.Errorf("%s is not pending", sg.g.MAC)
	}
	if _, err := op.Approve(ctx, d.ID, sg.name, nil); err != nil {
		return err
	}
	sg.id, sg.approved = d.ID, true
	select {
	case <-sg.agent.Done:
	case <-ctx.Done():
		return fmt.Errorf("no bundle: %w", ctx.Err())
	}
	if sg.err = sg.agent.Err(); sg.err != nil {
		return sg.err
	}
	if _, err := op.Decommission(ctx, sg.id, false); err != nil {
		return err
	}
	sg.decommissioned = true
	return waitRemoved(ctx, op, []*soakGateway{sg})
}

// waitRemoved polls each decommissioned gateway until every backend has
// removed what it held, each call with its own deadline.
func waitRemoved(ctx context.Context, op *client.Client, gws []*soakGateway) error {
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for _, sg := range gws {
		if !sg.decommissioned {
			continue
		}
		for {
			callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			d, err := op.Device(callCtx, sg.id)
			cancel()
			if err == nil && d.Decommission != nil && d.Decommission.Done() {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: decommission not done in 2 minutes (last error %v)", sg.name, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
	}
	return nil
}

// What the server may still hold once the load is over, above the
// baseline taken after the warm-up gateway, not counting its kept-alive
// connections to the backends (a file and a goroutine pair each), which a
// busier moment opened more of and which close at their idle timeout of
// 90 s: the goroutines of the job runner's producers and timers come and
// go between runs (idle counts of 43 to 58 were seen), so +20; a leak of
// one a gateway is past that even in the short run's 30 gateways.
const (
	settleGoroutines = 20
	settleFiles      = 4
	settleWithin     = 30 * time.Second
)

// idle is a server's goroutines and open files, less its connections to
// the backends.
type idle struct {
	goroutines, files, backendConns int
}

func idleOf(s Sample, conns int) idle {
	return idle{goroutines: s.Goroutines - 2*conns, files: s.FDs - conns, backendConns: conns}
}

// backendPorts are the simulators' ports, to tell the server's backend
// connections from the rest of its open files.
func backendPorts(b *Backends) map[int]bool {
	urls := []string{b.Mender.URL, b.Vault.URL, b.DPS.Config().Endpoint}
	for _, u := range b.Hub.Config().Endpoints {
		urls = append(urls, u)
	}
	ports := map[int]bool{}
	for _, raw := range urls {
		if u, err := url.Parse(raw); err == nil {
			if p, err := strconv.Atoi(u.Port()); err == nil {
				ports[p] = true
			}
		}
	}
	return ports
}

// sampleIdle samples the server and counts its backend connections.
func sampleIdle(ctx context.Context, srv *Server, ports map[int]bool) (Sample, idle, error) {
	s, err := SampleServer(ctx, srv, time.Now())
	if err != nil {
		return s, idle{}, err
	}
	c, err := SocketsTo(srv.Pid(), ports)
	return s, idleOf(s, c), err
}

// settle waits until the server's goroutines and open files, less its
// backend connections, are back to the baseline's, polling each second for
// up to settleWithin.
func settle(ctx context.Context, srv *Server, ports map[int]bool, base idle) (idle, time.Duration, error) {
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		_, now, err := sampleIdle(ctx, srv, ports)
		if err == nil && now.goroutines <= base.goroutines+settleGoroutines && now.files <= base.files+settleFiles {
			return now, time.Since(start), nil
		}
		if time.Since(start) > settleWithin {
			return now, time.Since(start), fmt.Errorf("not back to the baseline %v after the load (backend connections left out): goroutines %d (baseline %d, allowed +%d), open files %d (baseline %d, allowed +%d); last error %v",
				settleWithin, now.goroutines, base.goroutines, settleGoroutines, now.files, base.files, settleFiles, err)
		}
		select {
		case <-ctx.Done():
			return now, time.Since(start), ctx.Err()
		case <-tick.C:
		}
	}
}

// soakWarmUp is the start of the load left out of the flatness test: the
// server's pools, caches and heap fill up to their working size then.
func soakWarmUp(load time.Duration) time.Duration { return max(10*time.Second, load/10) }

// flatRule is one column's flatness test: the last third's median may
// exceed the first third's by pct percent plus slack. Medians, not maxima:
// on a loaded machine the server stalls now and then, approvals lag, and
// for a minute more agents wait, each holding a connection (a file and a
// few goroutines); a leak moves the whole last third, a stall only its top.
type flatRule struct {
	name  string
	get   func(Sample) float64
	pct   float64
	slack float64
	show  func(float64) string
}

func count(v float64) string { return fmt.Sprintf("%.0f", v) }
func mib(v float64) string   { return MiB(int64(v)) }

// flatRules: goroutines and open files follow the gateways in flight, a
// steady number; memory also follows the Go heap's pacing. The database
// grows with every gateway kept, so it is tested for growing no faster at
// the end than at the start instead.
var flatRules = []flatRule{
	{"goroutines", func(s Sample) float64 { return float64(s.Goroutines) }, 10, 20, count},
	{"open files", func(s Sample) float64 { return float64(s.FDs) }, 10, 10, count},
	{"RSS", func(s Sample) float64 { return float64(s.RSS) }, 10, 6 << 20, mib},
}

// dbGrowthFactor and dbGrowthSlack bound the database's growth in the last
// third against its growth in the first.
const (
	dbGrowthFactor = 1.5
	dbGrowthSlack  = 2 << 20
)

// checkFlat tests the samples taken between warm and loadEnd (since the
// sampling began): split in thirds, the last third's median of each column
// may exceed the first third's by the rule's margin, and the database may
// grow in the last third by at most dbGrowthFactor times what it grew in
// the first, plus dbGrowthSlack. It returns one line per column.
func checkFlat(samples []Sample, warm, loadEnd time.Duration) ([]string, error) {
	var window []Sample
	for _, s := range samples {
		if s.At >= warm && s.At <= loadEnd {
			window = append(window, s)
		}
	}
	if len(window) < 6 {
		return nil, fmt.Errorf("flatness: only %d samples between %v and %v", len(window), warm, loadEnd)
	}
	third := len(window) / 3
	first, last := window[:third], window[len(window)-third:]
	lines := []string{fmt.Sprintf("flat lines: samples %v–%v in thirds of %d; last third's median ≤ first third's median × (1+pct) + slack",
		warm.Round(time.Second), loadEnd.Round(time.Second), third)}
	var errs []error
	for _, rule := range flatRules {
		f, l := median(first, rule.get), median(last, rule.get)
		allowed := f*(1+rule.pct/100) + rule.slack
		verdict := "flat"
		if l > allowed {
			verdict = "GROWS"
			errs = append(errs, fmt.Errorf("%s grows: last third's median %s, first third's %s, allowed %s", rule.name, rule.show(l), rule.show(f), rule.show(allowed)))
		}
		lines = append(lines, fmt.Sprintf("  %-10s median first %s last %s allowed %s (+%.0f%% +%s), max first %s last %s: %s", rule.name,
			rule.show(f), rule.show(l), rule.show(allowed), rule.pct, rule.show(rule.slack), rule.show(maxOf(first, rule.get)), rule.show(maxOf(last, rule.get)), verdict))
	}
	db := func(s Sample) float64 { return float64(s.DB) }
	gFirst := db(first[len(first)-1]) - db(first[0])
	gLast := db(last[len(last)-1]) - db(last[0])
	allowed := gFirst*dbGrowthFactor + dbGrowthSlack
	verdict := "steady"
	if gLast > allowed {
		verdict = "ACCELERATES"
		errs = append(errs, fmt.Errorf("the database grows faster at the end: %s in the last third, %s in the first, allowed %s", mib(gLast), mib(gFirst), mib(allowed)))
	}
	lines = append(lines, fmt.Sprintf("  %-10s grew %s in the first third, %s in the last, allowed %s (×%.1f +%s): %s", "DB+WAL", mib(gFirst), mib(gLast), mib(allowed), dbGrowthFactor, mib(dbGrowthSlack), verdict))
	return lines, errors.Join(errs...)
}

// median is the middle value of a column; a sample whose /metrics read
// failed (-1) is left out.
func median(samples []Sample, get func(Sample) float64) float64 {
	var vs []float64
	for _, s := range samples {
		if v := get(s); v >= 0 {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return -1
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

func maxOf(samples []Sample, get func(Sample) float64) float64 {
	m := get(samples[0])
	for _, s := range samples[1:] {
		m = max(m, get(s))
	}
	return m
}

// held is what the backends hold, counted by gateway: Mender devices by
// MAC, DPS enrollments, hub devices and live certificates by name.
type held struct {
	mender, dps, hub, certs map[string]int
}

func countHeld(b *Backends) (held, error) {
	h := held{mender: map[string]int{}, dps: map[string]int{}, hub: map[string]int{}, certs: map[string]int{}}
	for _, d := range b.Mender.State.Devices() {
		h.mender[d.IdentityData["mac"]]++
	}
	for _, e := range b.DPS.State.Enrollments() {
		h.dps[e.RegistrationID]++
	}
	for _, hub := range b.Hub.State.Hubs() {
		for _, d := range b.Hub.State.Devices(hub) {
			h.hub[d.DeviceID]++
		}
	}
	for _, c := range b.Vault.State.Live() {
		block, _ := pem.Decode([]byte(c.CertificatePEM))
		if block == nil {
			return h, fmt.Errorf("a live certificate (serial %s) is not PEM", c.Serial)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return h, fmt.Errorf("live certificate %s: %w", c.Serial, err)
		}
		h.certs[cert.Subject.CommonName]++
	}
	return h, nil
}

// checkBackends wants every approved gateway bundled under its name, one
// object in each backend for each one kept, and none for each one
// decommissioned. Missing bundles and objects are losses, second objects
// duplicates, and what a decommission left behind an error of its own.
func checkBackends(b *Backends, gws []*soakGateway, r *Result) error {
	h, err := countHeld(b)
	if err != nil {
		return err
	}
	var errs []error
	bundles, kept, gone, leftovers := 0, 0, 0, 0
	for _, sg := range gws {
		if sg.err != nil || !sg.approved {
			r.Losses++
			errs = append(errs, fmt.Errorf("%s: approved %v, agent: %v", sg.name, sg.approved, sg.err))
			continue
		}
		if name, ok := sg.g.Bundled(); !ok || name != sg.name {
			r.Losses++
			errs = append(errs, fmt.Errorf("%s: bundle written %v, name %q", sg.name, ok, name))
			continue
		}
		bundles++
		objects := map[string]int{"mender": h.mender[sg.g.MAC], "dps": h.dps[sg.name], "hub": h.hub[sg.name], "certificate": h.certs[sg.name]}
		for backend, n := range objects {
			switch {
			case sg.decommissioned && n > 0:
				leftovers += n
				errs = append(errs, fmt.Errorf("%s: decommissioned, yet %s holds %d", sg.name, backend, n))
			case !sg.decommissioned && n == 0:
				r.Losses++
				errs = append(errs, fmt.Errorf("%s: %s holds nothing of it", sg.name, backend))
			case !sg.decommissioned && n > 1:
				r.Duplicates += n - 1
				errs = append(errs, fmt.Errorf("%s: %s holds %d", sg.name, backend, n))
			}
		}
		if sg.decommissioned {
			gone++
		} else {
			kept++
		}
	}
	r.Note("bundled %d/%d, kept %d in every backend once, decommissioned %d gone from all (leftovers %d)", bundles, len(gws), kept, gone, leftovers)
	return errors.Join(errs...)
}

// What a gateway and a request may leave in the database: rows of the
// device, its key, steps, events, certificate and audit entries; and a
// nonce, pruned 10 min after its request.
const (
	soakDBPerDevice = 32 << 10
	soakDBPerNonce  = 512
	soakDBSlack     = 16 << 20
)

// checkSoakRows bounds the database by what it holds.
func checkSoakRows(ctx context.Context, srv *Server, base Sample, samples []Sample, r *Result) error {
	rows, err := countRows(ctx, srv.DB, "devices", "nonces", "audit_log", "device_events")
	if err != nil {
		return err
	}
	_, hi := Extremes(samples)
	r.Note("rows devices %d events %d nonces %d audit %d", rows["devices"], rows["device_events"], rows["nonces"], rows["audit_log"])
	limit := base.DB + int64(rows["devices"])*soakDBPerDevice + int64(rows["nonces"])*soakDBPerNonce + soakDBSlack
	if hi.DB > limit {
		return fmt.Errorf("database reached %s, past the %s its %d devices and %d nonces allow", MiB(hi.DB), MiB(limit), rows["devices"], rows["nonces"])
	}
	return nil
}

// dumpGoroutines saves the server's goroutine profile (from its pprof
// listener, GATEHOUSE_PPROF) to path, for finding what did not end, and
// says where it is.
func dumpGoroutines(ctx context.Context, pprofAddr, path string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+pprofAddr+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return "no goroutine profile: " + err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "no goroutine profile: " + err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(path, b, 0o600)
	}
	if err != nil {
		return "no goroutine profile: " + err.Error()
	}
	return "the server's goroutines are in " + path
}
