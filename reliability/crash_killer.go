package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/simulate"
)

// killer SIGKILLs the serve process at moments that land inside work and
// starts it again on the same database. A kill is triggered either by a
// backend request (the k-th request any simulator receives after arming:
// the server dies while it waits for that answer, which the backend acts on
// and then loses, the lost response a crash makes) or by a random delay
// while the operator is approving.
type killer struct {
	srv    *Server
	faults []*simulate.HTTPFaults
	rng    *lockedRand

	countdown atomic.Int64
	fired     chan time.Time

	mu          sync.Mutex
	kills       int
	inBackend   int // kills made inside a backend request
	fallbacks   int // backend triggers that did not fire in time
	maxRecovery time.Duration
}

func newKiller(srv *Server, b *Backends, rng *lockedRand) *killer {
	return &killer{srv: srv, rng: rng, fired: make(chan time.Time, 1),
		faults: []*simulate.HTTPFaults{b.Mender.Faults, b.DPS.Faults, b.Vault.Faults, b.Hub.Faults}}
}

// lockedRand is a seeded source shared by goroutines.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand(seed uint64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (l *lockedRand) IntN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

func (l *lockedRand) Float64() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64()
}

// duration is uniform in [lo, hi].
func (l *lockedRand) duration(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(l.IntN(int(hi-lo)+1))
}

// killTrigger says when one kill happens.
type killTrigger struct {
	afterRequests int           // > 0: at that backend request
	afterDelay    time.Duration // else after this long
}

// trigger picks a kill's moment: half inside a backend call, half at a
// random delay while the operator works.
func (k *killer) trigger(maxRequests int, maxDelay time.Duration) killTrigger {
	if k.rng.IntN(2) == 0 {
		return killTrigger{afterRequests: 1 + k.rng.IntN(maxRequests)}
	}
	return killTrigger{afterDelay: k.rng.duration(5*time.Millisecond, maxDelay)}
}

// fallbackAfter is how long a backend trigger may wait for its request
// before the kill happens anyway.
const fallbackAfter = 20 * time.Second

// killAndRestart kills the server at t, keeps it down for a moment, and
// starts it again; it returns once the new process is ready.
func (k *killer) killAndRestart(ctx context.Context, t killTrigger) error {
	at, inBackend, err := k.kill(ctx, t)
	if err != nil {
		return err
	}
	down := time.NewTimer(k.rng.duration(0, 200*time.Millisecond)) // the supervisor's restart delay
	select {
	case <-down.C:
	case <-ctx.Done():
		down.Stop()
		return ctx.Err()
	}
	// Restart, not Start: the watcher of the server's own deaths may have
	// started it already, if the approval hook killed it first.
	if _, err := k.srv.Restart(ctx); err != nil {
		return fmt.Errorf("restart after kill %d: %w", k.kills+1, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kills++
	if inBackend {
		k.inBackend++
	}
	k.maxRecovery = max(k.maxRecovery, time.Since(at))
	return nil
}

// kill kills the server as t says and reports when, and whether a backend
// request triggered it.
func (k *killer) kill(ctx context.Context, t killTrigger) (time.Time, bool, error) {
	if t.afterRequests == 0 {
		if err := sleepCtx(ctx, t.afterDelay); err != nil {
			return time.Time{}, false, err
		}
		return time.Now(), false, k.srv.Kill()
	}
	k.arm(t.afterRequests)
	defer k.disarm()
	fallback := time.NewTimer(fallbackAfter)
	defer fallback.Stop()
	select {
	case at := <-k.fired:
		return at, true, nil
	case <-fallback.C:
	case <-ctx.Done():
		return time.Time{}, false, ctx.Err()
	}
	// No backend request came in time; the countdown may still fire
	// while we kill, which is harmless: Kill of a dead process is a no-op.
	k.countdown.Store(-1)
	k.mu.Lock()
	k.fallbacks++
	k.mu.Unlock()
	return time.Now(), false, k.srv.Kill()
}

// arm makes the n-th backend request from now kill the server. The
// simulators' LoseNext hook is where a request is seen: it is asked about
// every request, and the one it takes acts and then loses its answer.
func (k *killer) arm(n int) {
	k.countdown.Store(int64(n))
	for _, f := range k.faults {
		f.LoseNext(1, k.match)
	}
}

func (k *killer) disarm() {
	for _, f := range k.faults {
		f.LoseNext(0, nil)
	}
	select { // a fire racing the fallback
	case <-k.fired:
	default:
	}
}

// match runs for each backend request while armed, under that simulator's
// fault lock: the chosen one kills the server before the backend acts, so
// the action and its lost answer happen with nobody left to record them.
func (k *killer) match(r *http.Request) bool {
	if r.URL.Path == simulate.MenderAuthRequestsPath {
		return false // the gateways' own Mender clients, not gatehouse
	}
	if k.countdown.Add(-1) != 0 {
		return false
	}
	k.srv.Kill()
	select {
	case k.fired <- time.Now():
	default:
	}
	return true
}

// watchOwnExits starts the server again each time it dies without the
// harness killing it, which only serve's approval hook may do (see
// killAfterApproveEnv); a death without the hook's line in the log is a
// crash, reported by stop, which ends the watch.
func (k *killer) watchOwnExits(ctx context.Context) (stop func() error) {
	exits := make(chan int, 256)
	k.srv.OnOwnExit(func(start int) {
		select {
		case exits <- start:
		default: // cannot happen: each restart waits for the server to be ready
		}
	})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		var errs []error
		for {
			select {
			case <-ctx.Done():
				done <- errors.Join(errs...)
				return
			case start := <-exits:
				if err := k.restartOwnExit(ctx, start); err != nil && ctx.Err() == nil {
					errs = append(errs, err)
				}
			}
		}
	}()
	return func() error {
		k.srv.OnOwnExit(nil)
		cancel()
		return <-done
	}
}

// restartOwnExit checks that start ended by the hook and starts the
// server again, after the same restart delay a harness kill gets.
func (k *killer) restartOwnExit(ctx context.Context, start int) error {
	at := time.Now()
	var errs []error
	hook, err := k.hookKills()
	if err != nil {
		return err
	}
	if !hook.by[start] {
		errs = append(errs, fmt.Errorf("serve (start %d) exited on its own, not by the approval hook; its log:\n%s", start, k.srv.LogTail(20)))
	}
	if err := sleepCtx(ctx, k.rng.duration(0, 200*time.Millisecond)); err != nil {
		return err
	}
	if _, err := k.srv.Restart(ctx); err != nil {
		return errors.Join(append(errs, fmt.Errorf("restart after the approval hook's kill: %w", err))...)
	}
	k.mu.Lock()
	k.maxRecovery = max(k.maxRecovery, time.Since(at))
	k.mu.Unlock()
	return errors.Join(errs...)
}

// hookKills is what serve's log says the approval hook did.
type hookKills struct {
	by        map[int]bool // the starts whose process the hook killed
	processes int          // len(by)
	devices   []string     // the devices whose approval it cut off
}

// hookKills reads the server's log, where each start begins with a
// "---- start N" line (Server.Start) and the hook writes its line just
// before it kills the process.
func (k *killer) hookKills() (hookKills, error) {
	out := hookKills{by: map[int]bool{}}
	f, err := os.Open(k.srv.Log)
	if err != nil {
		return out, fmt.Errorf("read the server's log: %w", err)
	}
	defer f.Close()
	start := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "---- start "); ok {
			fmt.Sscanf(n, "%d", &start)
			continue
		}
		if id, ok := strings.CutPrefix(line, killAfterApproveLine); ok {
			out.by[start] = true
			out.devices = append(out.devices, strings.TrimSpace(id))
		}
	}
	out.processes = len(out.by)
	return out, sc.Err()
}
