package bench

import (
	"fmt"
	"testing"
	"time"

	"gatehouse/sandbox"
)

// BenchmarkParallelSteps adds 50 ms of latency to every call of every
// simulated backend (real clients over HTTP). The three steps of a device
// run in parallel, so approval → bundle should track the slowest single
// step plus a little, not the sum of the steps. Both are measured in the
// same run and printed.
func BenchmarkParallelSteps(b *testing.B) {
	const n, latency = 100, 50 * time.Millisecond
	for b.Loop() {
		sims, err := sandbox.Start(time.Second)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range []interface{ SetLatency(time.Duration) }{sims.Mender.Faults, sims.DPS.Faults, sims.Hub.Faults, sims.Vault.Faults} {
			f.SetLatency(latency)
		}
		cfg := sims.Config()
		cfg.DPS.RateLimit, cfg.Hubs.RateLimit = 1_000_000, 1_000_000
		clients, err := cfg.Build()
		if err != nil {
			b.Fatal(err)
		}
		run := runFleet(b, n, clients.Backends)
		sims.Close()
		fmt.Printf("with %v on every backend call, %d gateways:\n", latency, n)
		report(b, "approval → bundle", run.toBundle)
		report(b, "slowest single step", run.slowest)
		report(b, "sum of the steps", run.stepSum)
		over := pct(run.toBundle, 99) - pct(run.slowest, 99)
		fmt.Printf("p99 approval→bundle exceeds p99 slowest step by %v (target < 50ms); ratio to the sum of steps: %.2fx\n",
			over.Round(time.Millisecond), float64(pct(run.toBundle, 99))/float64(pct(run.stepSum, 99)))
		b.ReportMetric(float64(pct(run.toBundle, 99).Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(over.Microseconds())/1000, "p99-over-slowest-ms")
	}
}
