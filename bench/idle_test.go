package bench

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"gatehouse/internal/pgtest"
)

// idleWindow is how long an idle process's CPU is counted: long enough
// that River's slowest periodic work (leader election every 5 s) is in it
// twice.
const idleWindow = 10 * time.Second

// idleSettle is how long a server runs before its idle CPU is counted, so
// start-up work (migrations, first fetches, leader election) is over.
const idleSettle = 3 * time.Second

// BenchmarkIdle measures the CPU an idle server uses, as a percentage of
// one core, beside an idle bare net/http server measured in the same run,
// and then, on the same server configuration, approve→bundle for a handful
// of real agents: whatever makes idling cheap must not make approvals wait
// for a slow poll. SQLite always; PostgreSQL with GATEHOUSE_TEST_POSTGRES.
func BenchmarkIdle(b *testing.B) {
	for b.Loop() {
		base := idleBare(b)
		fmt.Printf("%-24s %6.2f %% of a core\n", "bare net/http, idle", base)
		for _, setup := range []struct {
			name string
			dsn  func() string
		}{
			{"sqlite", func() string { return filepath.Join(b.TempDir(), "idle.db") }},
			{"postgres", func() string { return pgtest.URL(b) }},
		} {
			if setup.name != "sqlite" && os.Getenv(pgtest.Env) == "" {
				fmt.Printf("%-24s skipped: set %s\n", setup.name, pgtest.Env)
				continue
			}
			set := startReplicas(b, setup.dsn(), 1, simulatedBackends(b))
			busy := idleCPU(b)
			run := crossApprove(b, set, 10)
			fmt.Printf("%-24s %6.2f %% of a core (%+.2f points over bare; target < 2 %%)  approve→bundle, 10 gateways: p50 %v p99 %v\n",
				setup.name+", idle", busy, busy-base, pct(run.toBundle, 50).Round(100*time.Microsecond),
				pct(run.toBundle, 99).Round(100*time.Microsecond))
			if setup.name == "sqlite" {
				b.ReportMetric(busy, "sqlite-idle-%core")
				b.ReportMetric(float64(pct(run.toBundle, 99).Microseconds())/1000, "sqlite-p99-ms")
			}
		}
	}
}

// idleBare is the idle CPU of this process with a bare net/http server
// listening: the Go runtime's own floor.
func idleBare(b *testing.B) float64 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), ReadHeaderTimeout: time.Second}
	go srv.Serve(l)
	defer srv.Close()
	return idleCPU(b)
}

// idleCPU lets the process settle, then returns the CPU it uses over
// idleWindow as a percentage of one core. Both waits are the measurement
// itself, not a wait for something to happen.
func idleCPU(b *testing.B) float64 {
	time.Sleep(idleSettle)
	runtime.GC()
	start, cpu := time.Now(), processCPU(b)
	time.Sleep(idleWindow)
	used, took := processCPU(b)-cpu, time.Since(start)
	return 100 * used.Seconds() / took.Seconds()
}
