package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/internal/keytest"
	"gatehouse/mender"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/simulate"
	"gatehouse/store"
	"gatehouse/vault"
)

// BenchmarkBulkApprove1000 approves 1,000 pending gateways in one bulk
// operation, twice in one run:
//   - baseline: no backends, so approval alone makes a gateway provisioned;
//   - Mender, DPS and Vault simulators with no delay and no quota, so the
//     figure is gatehouse's own cost per provision.
//
// It prints wall time, provisions/s, process CPU-ms per provision and the
// ratio to the baseline, and when the last approval was recorded (steps
// keep pace with approvals when it is close to the end). With
// BULK_CPUPROFILE=file it writes a CPU profile of the run with backends
// alone, without the enrollments and the baseline -cpuprofile would mix in.
func BenchmarkBulkApprove1000(b *testing.B) {
	for b.Loop() {
		benchBulk(b, 1000)
	}
}

// BenchmarkBulkApprove10000 is the same at the largest bulk operation
// gatehouse takes, to show whether the cost per provision grows with the
// queue.
func BenchmarkBulkApprove10000(b *testing.B) {
	for b.Loop() {
		benchBulk(b, provision.MaxBulkItems)
	}
}

// BenchmarkBulkQuota1000 approves 1,000 gateways against a DPS simulator
// that throttles past its operations quota (429 with Retry-After,
// reference/external-apis.md §2.6), scaled from 1,000/min to 300 per 5 s so
// the run takes half a minute, not three. It fails unless every gateway
// ends provisioned with DPS having answered no 429 and seen no window above
// the quota.
func BenchmarkBulkQuota1000(b *testing.B) {
	for b.Loop() {
		base := runBulk(b, bulkSetup{n: 1000})
		q := runBulk(b, bulkSetup{n: 1000, backends: true, quota: 300, window: 5 * time.Second})
		base.print("baseline (no backends)", base)
		q.print("DPS quota 300/5s", base)
		b.ReportMetric(float64(q.throttle), "429s")
		b.ReportMetric(q.perSecond()*60, "gateways/min")
	}
}

func benchBulk(b *testing.B, n int) {
	base := runBulk(b, bulkSetup{n: n})
	full := runBulk(b, bulkSetup{n: n, backends: true})
	base.print("baseline (no backends)", base)
	full.print("mender+dps+vault", base)
	b.ReportMetric(full.cpuPer(), "cpu-ms/provision")
	b.ReportMetric(full.perSecond(), "provisions/s")
}

// bulkSetup is one bulk run: n gateways, backends or none, and a DPS
// quota per window (none if zero).
type bulkSetup struct {
	n        int
	backends bool
	quota    int
	window   time.Duration
}

// bulkRun is what one run measured: from the bulk operation's start to the
// last gateway provisioned, and the process CPU used meanwhile (server,
// simulators and this benchmark's progress reads, all in this process).
type bulkRun struct {
	n        int
	took     time.Duration
	approved time.Duration // until the last item's approval was recorded
	cpu      time.Duration
	dpsOps   int
	dpsMax   int
	window   time.Duration
	quota    int
	throttle int
}

func (r bulkRun) perSecond() float64 { return float64(r.n) / r.took.Seconds() }
func (r bulkRun) cpuPer() float64    { return float64(r.cpu.Microseconds()) / 1000 / float64(r.n) }

func (r bulkRun) print(label string, base bulkRun) {
	fmt.Printf("%-24s %6d provisioned in %-9v %7.0f provisions/s (%.2fx baseline)  %6.2f CPU-ms/provision (%.2fx baseline)",
		label, r.n, r.took.Round(time.Millisecond), r.perSecond(), r.perSecond()/base.perSecond(),
		r.cpuPer(), r.cpuPer()/base.cpuPer())
	fmt.Printf("  approved in %v", r.approved.Round(time.Millisecond))
	if r.quota > 0 {
		fmt.Printf("  DPS: %d operations, at most %d in one %v window (quota %d), %d throttled", r.dpsOps, r.dpsMax, r.window, r.quota, r.throttle)
	}
	fmt.Println()
}

// processCPU is the user and system time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func runBulk(b *testing.B, set bulkSetup) bulkRun {
	ctx := context.Background()
	backends, dps, stats := bulkBackends(b, set)
	db, svc, stop := startService(b, filepath.Join(b.TempDir(), "bulk.db"), provision.Config{
		Backends: backends, RetryBase: 50 * time.Millisecond, RetryMax: time.Second, PendingCap: 2 * set.n,
	})
	defer stop()
	ids := enrollMany(b, svc, set.n)
	runtime.GC()

	if set.backends {
		defer profileRun(b)()
	}
	start, cpu := time.Now(), processCPU(b)
	op, err := svc.StartBulk(ctx, "user:bench", provision.BulkRequest{Action: gatehouse.BulkApprove, IDs: ids, Pattern: "site-a-{n:05}"})
	if err != nil {
		b.Fatal(err)
	}
	waitProvisioned(b, db, set.n)
	run := bulkRun{n: set.n, took: time.Since(start), cpu: processCPU(b) - cpu, window: set.window, quota: set.quota}
	var approved int64
	if err := db.SQL().QueryRow(`SELECT MAX(updated_at) FROM bulk_items WHERE operation_id = ?`, op.ID).Scan(&approved); err != nil {
		b.Fatal(err)
	}
	run.approved = time.UnixMicro(approved).Sub(start)
	done, err := svc.Bulk(ctx, op.ID)
	if err != nil {
		b.Fatal(err)
	}
	if done.Done != set.n {
		b.Fatalf("bulk %d done %d failed", done.Done, done.Failed)
	}
	if stats != nil {
		st := stats()
		run.dpsOps, run.dpsMax, run.throttle = st.Requests, st.MaxPerWindow, st.Throttled
		if st.Throttled != 0 || st.MaxPerWindow > set.quota {
			b.Fatalf("DPS %d throttled, %d in a window", st.Throttled, st.MaxPerWindow)
		}
	}
	if set.backends && dps.Len() != set.n {
		b.Fatalf("%d DPS enrollments for %d gateways", dps.Len(), set.n)
	}
	return run
}

// profileRun starts a CPU profile into the file BULK_CPUPROFILE names, if
// any, and returns what stops it.
func profileRun(b *testing.B) func() {
	path := os.Getenv("BULK_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
	}
}

// waitProvisioned polls until n gateways are provisioned: their bundles are
// released to their agents. Its reads are in the CPU measured and take the
// one database connection the server works on, so each is one count on the
// devices' state index, not a device list (which also counts the pending
// queue and reads a page with its steps: at 10,000 gateways that alone was
// 0.4 CPU-ms per provision).
func waitProvisioned(b *testing.B, db *store.DB, n int) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last, stuck := -1, time.Now()
	for range tick.C {
		var got int
		if err := db.SQL().QueryRow(`SELECT COUNT(*) FROM devices WHERE state = ?`, gatehouse.StateProvisioned).Scan(&got); err != nil {
			b.Fatal(err)
		}
		if got == n {
			return
		}
		if got != last {
			last, stuck = got, time.Now()
		} else if time.Since(stuck) > time.Minute {
			b.Fatalf("provisioning stuck at %d of %d", got, n)
		}
	}
}

// bulkBackends are the simulated backends of one run, the DPS state and,
// with a quota, its counters.
func bulkBackends(b *testing.B, set bulkSetup) ([]gatehouse.Backend, *simulate.DPS, func() simulate.QuotaStats) {
	if !set.backends {
		return nil, nil, nil
	}
	var quota *simulate.Quota
	if set.quota > 0 {
		quota = simulate.NewQuota(set.quota, set.window)
	}
	dpsState := simulate.NewDPS("")
	srv, err := simulate.NewDPSServer(simulate.DPSServerOptions{State: dpsState, Quota: quota})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	dcfg := srv.Config()
	dcfg.RateLimit, dcfg.RateWindow = 1_000_000, time.Minute
	if quota != nil {
		dcfg.RateLimit, dcfg.RateWindow = set.quota, set.window
	}
	dps, err := azure.NewDPS(dcfg)
	if err != nil {
		b.Fatal(err)
	}
	pki, err := simulate.NewPKI()
	if err != nil {
		b.Fatal(err)
	}
	if err := pki.SetRole(simulate.RecommendedVaultRole()); err != nil {
		b.Fatal(err)
	}
	m := simulate.NewMender()
	m.SetInventoryDelay(0)
	mb := mender.NewBackend(m)
	mb.TagWait = 20 * time.Millisecond
	backends := []gatehouse.Backend{mb, azure.NewDPSBackend(dps), vault.NewBackend(pki, false, "gateway")}
	if quota == nil {
		return backends, dpsState, nil
	}
	return backends, dpsState, quota.Stats
}

func enrollMany(b *testing.B, svc *provision.Service, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		sig, sealKey := keytest.Ed25519(b)
		st, err := svc.Enroll(context.Background(), sig, protocol.EnrollRequest{MAC: fmt.Sprintf("02:00:01:%02x:%02x:%02x", i>>16, (i>>8)&0xff, i&0xff),
			SealKey: sealKey}, "192.0.2.1")
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = st.DeviceID
	}
	return ids
}
