package azure_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/protocol"
	"gatehouse/simulate"
)

// Both answers a PUT without If-Match on an existing enrollment may get:
// 409 (DPS's troubleshooting guide lists 409 for "re-creating an existing
// item", and azure-iot-sdk-csharp issue #3076 reports CreateOrUpdate
// without an ETag failing with "already exists") or create-or-update
// replacing it (the operation's name in service.json). Which one Azure does
// is unconfirmed (reference/external-apis.md §2.3, §7), so every test here
// runs against both.
var putModes = []struct {
	name     string
	conflict bool
}{{"conflict", true}, {"replace", false}}

// countingServer is a DPS simulator whose requests are counted by method
// and path pattern, so a test can say how many service operations a step
// cost: DPS counts each against "Operations 1,000/min/service" (§2.6).
type countingServer struct {
	*simulate.DPSServer
	mu    sync.Mutex
	calls []string
}

func newCountingServer(t *testing.T, conflict bool) *countingServer {
	t.Helper()
	c := &countingServer{}
	c.DPSServer = dpsServer(t, simulate.DPSServerOptions{ConflictOnExisting: conflict, Hub: simulate.NewHub(),
		Wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c.mu.Lock()
				c.calls = append(c.calls, r.Method+" "+strings.SplitN(r.URL.Path, "/", 3)[1])
				c.mu.Unlock()
				next.ServeHTTP(w, r)
			})
		}})
	return c
}

func (c *countingServer) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

// TestDPSStepCreatesInOneCall: approval has just found the name free, so
// the step's first attempt is one PUT and nothing else.
func TestDPSStepCreatesInOneCall(t *testing.T) {
	for _, m := range putModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			srv := newCountingServer(t, m.conflict)
			b := azure.NewDPSBackend(dpsClient(t, srv.Config()))
			res, err := b.Provision(ctx, dpsInput("gw-one"))
			if err != nil {
				t.Fatal(err)
			}
			if calls := srv.take(); len(calls) != 1 || calls[0] != "PUT enrollments" {
				t.Fatalf("calls = %v, want one PUT", calls)
			}
			e, _ := srv.State.GetEnrollment(ctx, "gw-one")
			if string(res.Secrets[protocol.FieldDPSPrimaryKey]) != e.PrimaryKey || !e.IoTEdge || e.DeviceID != "gw-one" {
				t.Fatalf("stored %+v; the step must hand out the stored key", e)
			}
		})
	}
}

// TestDPSStepLostPUTOverHTTP: the PUT takes effect and its answer is lost
// on the wire. The client does not send it again (a second PUT could not be
// told from one replacing someone else's enrollment); the step reads at
// once and adopts the enrollment by its key's digest. The keys are never
// replaced.
func TestDPSStepLostPUTOverHTTP(t *testing.T) {
	for _, m := range putModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			srv := newCountingServer(t, m.conflict)
			b := azure.NewDPSBackend(dpsClient(t, srv.Config()))
			srv.Faults.LoseNext(1, func(r *http.Request) bool { return r.Method == http.MethodPut })
			res, err := b.Provision(ctx, dpsInput("gw-lost"))
			if err != nil {
				t.Fatal(err)
			}
			e, _ := srv.State.GetEnrollment(ctx, "gw-lost")
			if string(res.Secrets[protocol.FieldDPSPrimaryKey]) != e.PrimaryKey || srv.State.Len() != 1 {
				t.Fatalf("%d enrollments; want one whose key the step hands out", srv.State.Len())
			}
			if calls := srv.take(); len(calls) != 2 || calls[0] != "PUT enrollments" || calls[1] != "GET enrollments" {
				t.Errorf("calls = %v, want the PUT and one GET", calls)
			}
		})
	}
}

// TestDPSStepRerunAfterLostPUT: the PUT's answer and the look after it are
// both lost, so the step fails. The rerun finds the attempt's record, reads
// first and adopts: one GET, no second PUT.
func TestDPSStepRerunAfterLostPUT(t *testing.T) {
	for _, m := range putModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			srv := newCountingServer(t, m.conflict)
			cfg := srv.Config()
			cfg.Retries = -1
			b := azure.NewDPSBackend(dpsClient(t, cfg))
			srv.Faults.LoseNext(2, func(*http.Request) bool { return true })
			step := dpsInput("gw-rerun")
			if _, err := b.Provision(ctx, step); err == nil {
				t.Fatal("the lost answers did not reach the step")
			}
			first, _ := srv.State.GetEnrollment(ctx, "gw-rerun")
			srv.take()
			res, err := b.Provision(ctx, step)
			if err != nil {
				t.Fatal(err)
			}
			now, _ := srv.State.GetEnrollment(ctx, "gw-rerun")
			if now.ETag != first.ETag || string(res.Secrets[protocol.FieldDPSPrimaryKey]) != first.PrimaryKey || srv.State.Len() != 1 {
				t.Fatalf("enrollment rewritten (%v) or the step's key is not the first PUT's", now.ETag != first.ETag)
			}
			if calls := srv.take(); len(calls) != 1 || calls[0] != "GET enrollments" {
				t.Errorf("rerun calls = %v, want one GET", calls)
			}
		})
	}
}

// TestDPSStepConcurrentAttempts: two runs of the step at once, each
// starting from the same record (none). Each records its key before its
// PUT, so whichever PUT wins, no run hands out keys other than the stored
// ones (the loser may refuse, not knowing the winner's record yet), and a
// rerun, which reads both records, adopts the winner's.
func TestDPSStepConcurrentAttempts(t *testing.T) {
	ctx := context.Background()
	dps := simulate.NewDPS("")
	b := azure.NewDPSBackend(dps)
	var mu sync.Mutex
	shared := map[string]string{}
	// in is a run's input: a snapshot of the record when it starts, as
	// each job run reads the step's output then, and a Record into the
	// shared one.
	in := func() *gatehouse.StepInput {
		mu.Lock()
		defer mu.Unlock()
		x := dpsInput("gw-twice")
		maps.Copy(x.Recorded, shared)
		x.Record = func(_ context.Context, kv map[string]string) error {
			mu.Lock()
			defer mu.Unlock()
			maps.Copy(shared, kv)
			return nil
		}
		return x
	}
	runs := []*gatehouse.StepInput{in(), in()}
	keys := make([]string, len(runs))
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, x := range runs {
		wg.Go(func() {
			res, err := b.Provision(ctx, x)
			errs[i] = err
			if err == nil {
				keys[i] = string(res.Secrets[protocol.FieldDPSPrimaryKey])
			}
		})
	}
	wg.Wait()
	e, _ := dps.GetEnrollment(ctx, "gw-twice")
	for i := range runs {
		if errs[i] == nil && keys[i] != e.PrimaryKey {
			t.Fatalf("run %d handed out a key that is not the stored one", i+1)
		}
	}
	res, err := b.Provision(ctx, in())
	if err != nil || string(res.Secrets[protocol.FieldDPSPrimaryKey]) != e.PrimaryKey || dps.Len() != 1 {
		t.Fatalf("rerun: %v; %d enrollments", err, dps.Len())
	}
}

// TestDPSStepRefusesForeignEnrollment: an enrollment of the gateway's name
// made by something else after approval checked the name (not with keys
// any attempt sent) is refused with a clear reason and its keys are not
// handed to the gateway, first time and on every rerun. Where the service
// answers 409 it is left untouched; where it replaces, the step notices
// from the answer (a registered device) and says so.
func TestDPSStepRefusesForeignEnrollment(t *testing.T) {
	for _, m := range putModes {
		t.Run(m.name, func(t *testing.T) {
			ctx := context.Background()
			srv := newCountingServer(t, m.conflict)
			srv.State.SetAssignDelay(0)
			foreign := newEnrollment(t, "gw-taken")
			if _, err := srv.State.CreateEnrollment(ctx, foreign); err != nil {
				t.Fatal(err)
			}
			if err := srv.State.Register("gw-taken", foreign.PrimaryKey, ""); err != nil {
				t.Fatal(err)
			}
			b := azure.NewDPSBackend(dpsClient(t, srv.Config()))
			step := dpsInput("gw-taken")
			for attempt := 1; attempt <= 2; attempt++ {
				_, err := b.Provision(ctx, step)
				if err == nil || !strings.Contains(err.Error(), `"gw-taken"`) || !strings.Contains(err.Error(), "delete enrollment") {
					t.Fatalf("attempt %d: err = %v, want a refusal naming the enrollment and what to do", attempt, err)
				}
				if m.conflict && gatehouse.ErrorCode(err) != gatehouse.ECONFLICT {
					t.Errorf("attempt %d: err = %v, want ECONFLICT", attempt, err)
				}
				if !m.conflict && attempt == 1 && !errors.Is(err, azure.ErrReplacedEnrollment) {
					t.Errorf("attempt 1: err = %v, want it to say the PUT replaced an enrollment", err)
				}
			}
			e, _ := srv.State.GetEnrollment(ctx, "gw-taken")
			if m.conflict && e.PrimaryKey != foreign.PrimaryKey {
				t.Error("a service answering 409 still had its enrollment's keys replaced")
			}
		})
	}
}

// TestDPSCreateNoticesReplacement: the client reads createdDateTimeUtc and
// lastUpdatedDateTimeUtc (service.json IndividualEnrollment, read-only)
// from a PUT's answer; one created well before it was updated existed
// before the PUT.
func TestDPSCreateNoticesReplacement(t *testing.T) {
	ctx := context.Background()
	srv := dpsServer(t, simulate.DPSServerOptions{})
	d := dpsClient(t, srv.Config())
	if _, err := d.CreateEnrollment(ctx, newEnrollment(t, "gw-old")); err != nil {
		t.Fatalf("a fresh enrollment counted as replaced: %v", err)
	}
	srv.State.Backdate("gw-old", time.Hour)
	stored, err := d.CreateEnrollment(ctx, newEnrollment(t, "gw-old"))
	if !errors.Is(err, azure.ErrReplacedEnrollment) || stored.RegistrationID != "gw-old" {
		t.Fatalf("err = %v, want ErrReplacedEnrollment with what is stored", err)
	}
	cur, _ := srv.State.GetEnrollment(ctx, "gw-old")
	upd := cur
	_, err = d.CreateEnrollment(ctx, upd) // If-Match: an update meant as one
	if err != nil {
		t.Fatalf("an update with If-Match counted as a replacement: %v", err)
	}
}
