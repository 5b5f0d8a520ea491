package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gatehouse"
	"gatehouse/client"
)

func init() {
	register(Scenario{
		Name:  "disk",
		About: "the database's disk fills while gateways enroll and are approved: not ready, writes 503, reads go on, nothing committed is lost, and it recovers without a restart",
		Order: 60,
		Run:   runDisk,
	})
}

// diskSize is one run's size.
type diskSize struct {
	before   int   // gateways provisioned before the disk fills
	cycles   int   // times the disk fills and is freed
	headroom int64 // bytes left free when a cycle starts
	after    int   // gateways enrolled and approved after each recovery
	maxFill  int   // gateways a cycle may enroll before the disk must be full
}

// diskRun is the disk scenario's state.
type diskRun struct {
	h    *Harness
	b    *Backends
	srv  *Server
	op   *client.Client
	disk smallDisk
	r    *Result
	sz   diskSize

	approved map[string]*Gateway // by name: every approval the server answered 200
	held     []*Gateway          // enrolled, approval refused: approved after recovery
	set      int
	refused  int
}

func runDisk(ctx context.Context, h *Harness, size Size) (*Result, error) {
	start := time.Now()
	r := &Result{}
	d := &diskRun{h: h, r: r, approved: map[string]*Gateway{}, sz: diskSize{
		before: size.Pick(3, 10), cycles: size.Pick(1, 3), headroom: 2 << 20,
		after: size.Pick(3, 10), maxFill: 2000,
	}}
	err := d.run(ctx)
	r.Took = time.Since(start)
	return r, err
}

func (d *diskRun) run(ctx context.Context) error {
	disk, why, err := openSmallDisk(filepath.Join(d.h.Dir, "small"), 64)
	if err != nil {
		d.r.Note("skipped: no small disk possible here (%v)", err)
		return nil
	}
	defer disk.Close()
	d.disk = disk
	if why != "" {
		d.r.Note("fallback %s", why)
	}
	d.r.Note("disk %s", disk.Describe())
	if err := d.start(ctx); err != nil {
		return err
	}
	defer d.b.Close()
	defer d.srv.Kill()
	gws, err := d.gateways(d.sz.before)
	if err != nil {
		return err
	}
	if err := d.provision(ctx, gws); err != nil {
		return fmt.Errorf("before the disk fills: %w", err)
	}
	for c := range d.sz.cycles {
		if err := d.cycle(ctx, c); err != nil {
			return fmt.Errorf("cycle %d: %w", c+1, err)
		}
	}
	return d.finish(ctx)
}

func (d *diskRun) start(ctx context.Context) error {
	b, err := d.h.StartBackends(50 * time.Millisecond)
	if err != nil {
		return err
	}
	d.b = b
	// Every gateway enrolls from 127.0.0.1: the per-source device limit
	// (1 a second, bursts of 20) is another scenario's subject.
	d.srv, err = d.h.StartServer(ctx, ServerOptions{DB: filepath.Join(d.h.Dir, "small", "gatehouse.db"), Config: b.EnvFile,
		Args: []string{"--device-rate", "10000", "--device-burst", "10000"}})
	if err != nil {
		b.Close()
		return err
	}
	if err := d.disk.Attach(d.srv.Pid()); err != nil {
		return err
	}
	d.op, err = d.srv.OperatorClient(ctx, "disk")
	return err
}

// gateways makes n gateways of a set of their own.
func (d *diskRun) gateways(n int) ([]*Gateway, error) {
	d.set++
	return d.h.NewGateways(n, d.set)
}

// provision enrolls and approves gws (none may be refused) and runs their
// agents until each holds its bundle.
func (d *diskRun) provision(ctx context.Context, gws []*Gateway) error {
	if len(gws) == 0 {
		return errors.New("no gateways")
	}
	for _, g := range gws {
		a, st, err := enrollSigned(ctx, d.srv.URL, g)
		if err != nil || st == nil {
			return fmt.Errorf("enroll: %v %v", a, err)
		}
		d.r.Operations++
		if err := d.approve(ctx, st.DeviceID, g); err != nil {
			return err
		}
	}
	return d.runAgents(ctx, gws)
}

// name is the name a gateway is approved with, from its MAC.
func name(g *Gateway) string { return "disk-" + strings.ReplaceAll(g.MAC[6:], ":", "") }

func (d *diskRun) approve(ctx context.Context, id string, g *Gateway) error {
	callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := d.op.Approve(callCtx, id, name(g), nil)
	d.r.Operations++
	if err != nil {
		return fmt.Errorf("approve %s: %w", name(g), err)
	}
	d.approved[name(g)] = g
	return nil
}

// runAgents runs a real agent for each gateway until it holds its bundle.
func (d *diskRun) runAgents(ctx context.Context, gws []*Gateway) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	errs := make([]error, len(gws))
	var wg sync.WaitGroup
	for i, g := range gws {
		wg.Go(func() {
			if _, err := g.RunAgent(ctx, d.srv.URL); err != nil {
				errs[i] = fmt.Errorf("agent of %s: %w", name(g), err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cycle fills the disk through the server's own writes, checks how the
// server behaves on a full disk, frees the space and checks it recovers.
func (d *diskRun) cycle(ctx context.Context, c int) error {
	if err := d.disk.Squeeze(d.sz.headroom); err != nil {
		return fmt.Errorf("squeeze: %w", err)
	}
	n, first, err := d.fill(ctx)
	if err != nil {
		return err
	}
	d.r.Faults++
	d.r.Note("cycle %d full after %d gateways (%s)", c+1, n, first)
	// The crumbs a refused write leaves are not space: make it all gone.
	if err := d.disk.Fill(); err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	if err := d.whileFull(ctx); err != nil {
		return err
	}
	if err := d.disk.Free(); err != nil {
		return fmt.Errorf("free: %w", err)
	}
	freed := time.Now()
	if err := waitStatus(ctx, d.srv.URL, http.StatusOK, "", time.Minute); err != nil {
		return fmt.Errorf("after freeing the disk: %w", err)
	}
	d.r.Note("cycle %d ready %s after free", c+1, time.Since(freed).Round(10*time.Millisecond))
	// Provisioning goes on: what was refused, and new gateways.
	for _, g := range d.held {
		a, st, err := enrollSigned(ctx, d.srv.URL, g)
		if err != nil || st == nil {
			return fmt.Errorf("enroll after recovery: %v %v", a, err)
		}
		d.r.Operations++
		if err := d.approve(ctx, st.DeviceID, g); err != nil {
			return fmt.Errorf("after recovery: %w", err)
		}
	}
	d.held = nil
	gws, err := d.gateways(d.sz.after)
	if err != nil {
		return err
	}
	return d.provision(ctx, gws)
}

// fill enrolls and approves new gateways until the server refuses one for
// want of space; it returns how many got through and what was refused.
func (d *diskRun) fill(ctx context.Context) (int, string, error) {
	gws, err := d.gateways(d.sz.maxFill)
	if err != nil {
		return 0, "", err
	}
	for i, g := range gws {
		a, st, err := enrollSigned(ctx, d.srv.URL, g)
		if err != nil {
			return i, "", fmt.Errorf("enroll: %w", err)
		}
		d.r.Operations++
		if st == nil {
			if err := unwritableAnswer(a); err != nil {
				return i, "", fmt.Errorf("enrollment refused: %w", err)
			}
			d.refused++
			d.held = append(d.held, g)
			return i, "enrollment refused", nil
		}
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = d.op.Approve(callCtx, st.DeviceID, name(g), nil)
		cancel()
		d.r.Operations++
		if err != nil {
			if gatehouse.ErrorCode(err) != gatehouse.EUNAVAILABLE || !strings.Contains(err.Error(), "cannot be written") {
				return i, "", fmt.Errorf("approval refused, but not for space: %w", err)
			}
			d.refused++
			d.held = append(d.held, g)
			return i, "approval refused", nil
		}
		d.approved[name(g)] = g
	}
	return len(gws), "", fmt.Errorf("the disk never filled: %d gateways enrolled and approved", len(gws))
}

// unwritableAnswer checks a refused write says what the issue asks: 503,
// code unavailable, a message that names the cause, a Retry-After.
func unwritableAnswer(a answer) error {
	if a.Status != http.StatusServiceUnavailable || a.Code != gatehouse.EUNAVAILABLE ||
		!strings.Contains(a.Message, "cannot be written (disk full or read-only)") || a.RetryAfter == "" {
		return fmt.Errorf("answer %v, want 503 unavailable saying the database cannot be written, with Retry-After", a)
	}
	return nil
}

// whileFull checks the server on a full disk: not ready with the reason,
// writes refused, reads answered, every committed approval still there.
func (d *diskRun) whileFull(ctx context.Context) error {
	if err := waitStatus(ctx, d.srv.URL, http.StatusServiceUnavailable, "database unwritable", 30*time.Second); err != nil {
		return fmt.Errorf("on a full disk: %w", err)
	}
	gws, err := d.gateways(1)
	if err != nil {
		return err
	}
	a, _, err := enrollSigned(ctx, d.srv.URL, gws[0])
	d.r.Operations++
	if err != nil {
		return err
	}
	if err := unwritableAnswer(a); err != nil {
		return fmt.Errorf("an enrollment on a full disk: %w", err)
	}
	d.refused++
	d.held = append(d.held, gws[0])
	if a, err := get(ctx, d.srv.URL, "/healthz"); err != nil || a.Status != http.StatusOK {
		return fmt.Errorf("/healthz on a full disk: %v %v", a, err)
	}
	return d.checkCommitted(ctx, false)
}

// checkCommitted lists the devices (a read) and counts every approval the
// server answered 200 that is not there, under its name, as a loss; with
// bundled, also each gateway that does not hold its bundle.
func (d *diskRun) checkCommitted(ctx context.Context, bundled bool) error {
	byMAC, err := listDevices(ctx, d.op, "")
	d.r.Operations++
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	losses := 0
	var one string
	for n, g := range d.approved {
		dev, ok := byMAC[g.MAC]
		if !ok || dev.Name != n || dev.State == gatehouse.StatePending {
			losses++
			continue
		}
		one = dev.ID
		if got, ok := g.Bundled(); bundled && (!ok || got != n) {
			losses++
		}
	}
	if one != "" {
		callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := d.op.Device(callCtx, one)
		cancel()
		d.r.Operations++
		if err != nil {
			return fmt.Errorf("read one device: %w", err)
		}
	}
	d.r.Losses = max(d.r.Losses, losses)
	return nil
}

// finish gives every approved gateway its bundle, then counts what the
// backends hold, and checks everything survives a restart as well.
func (d *diskRun) finish(ctx context.Context) error {
	var all []*Gateway
	for _, g := range d.approved {
		all = append(all, g)
	}
	if err := d.runAgents(ctx, all); err != nil {
		return err
	}
	if err := d.checkCommitted(ctx, true); err != nil {
		return err
	}
	if _, err := WaitDevices(ctx, d.op, gatehouse.StateProvisioned, len(d.approved), 2*time.Minute); err != nil {
		return err
	}
	n := len(d.approved)
	live := d.b.Vault.State.Len() - len(d.b.Vault.State.Revoked())
	for _, held := range []int{d.b.Mender.State.Len(), d.b.DPS.State.Len(), live} {
		d.r.Duplicates += max(held-n, 0)
		d.r.Losses += max(n-held, 0)
	}
	if err := d.srv.Kill(); err != nil {
		return err
	}
	if err := d.srv.Start(ctx); err != nil {
		return err
	}
	if err := d.checkCommitted(ctx, true); err != nil {
		return fmt.Errorf("after a restart: %w", err)
	}
	d.r.Note("provisioned %d", n)
	d.r.Note("writes refused %d", d.refused)
	return nil
}

// waitStatus polls /readyz, each poll with its own deadline, until it
// answers status (with reason, when given) or wait passes.
func waitStatus(ctx context.Context, base string, status int, reason string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last answer
	var err error
	for {
		last, err = get(ctx, base, "/readyz")
		if err == nil && last.Status == status && (reason == "" || last.Reason == reason) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/readyz answered %v (%v) for %v, want %d %s", last, err, wait, status, reason)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
