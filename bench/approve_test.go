package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/azure"
	"gatehouse/mender"
	"gatehouse/provision"
	"gatehouse/simulate"
	"gatehouse/vault"
)

const gateways = 200

// fleetRun is what one run of a fleet measured, per gateway.
type fleetRun struct {
	toBundle []time.Duration // approve call returned → agent holds its files
	slowest  []time.Duration // the device's slowest backend step
	stepSum  []time.Duration // all its backend steps end to end
}

// BenchmarkApproveToBundle measures, over 200 real agents, the time from an
// approve call returning to the agent holding its bundle on disk, with
// zero-latency simulated backends. The baseline is the same run with no
// backends, where approval releases the bundle at once: the ratio is what
// the durable provisioning jobs add on top of the long poll itself.
func BenchmarkApproveToBundle(b *testing.B) {
	for b.Loop() {
		base := runFleet(b, gateways, nil).toBundle
		full := runFleet(b, gateways, simulatedBackends(b)).toBundle
		report(b, "baseline (no backends)", base)
		report(b, "mender+dps+vault", full)
		ratio := float64(pct(full, 99)) / float64(pct(base, 99))
		fmt.Printf("p99 ratio to baseline: %.2fx (target: p99 < 1s with backends)\n", ratio)
		b.ReportMetric(float64(pct(full, 50).Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(pct(full, 99).Microseconds())/1000, "p99-ms")
		b.ReportMetric(ratio, "p99-ratio")
	}
}

func simulatedBackends(b *testing.B) []gatehouse.Backend {
	pki, err := simulate.NewPKI()
	if err != nil {
		b.Fatal(err)
	}
	if err := pki.SetRole(simulate.RecommendedVaultRole()); err != nil {
		b.Fatal(err)
	}
	return []gatehouse.Backend{mender.NewBackend(simulate.NewMender()), azure.NewDPSBackend(simulate.NewDPS("")),
		vault.NewBackend(pki, false, "gateway")}
}

func report(b *testing.B, label string, d []time.Duration) {
	fmt.Printf("%-24s n=%d  p50=%-8v p90=%-8v p99=%-8v max=%v\n", label, len(d),
		pct(d, 50).Round(time.Microsecond*100), pct(d, 90).Round(time.Microsecond*100),
		pct(d, 99).Round(time.Microsecond*100), pct(d, 100).Round(time.Microsecond*100))
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)]
}

// fleet is one server and its token.
type fleet struct {
	url, token string
	svc        *provision.Service
}

// runFleet runs gateways agents against one server on SQLite.
func runFleet(b *testing.B, gateways int, backends []gatehouse.Backend) fleetRun {
	return crossApprove(b, startReplicas(b, filepath.Join(b.TempDir(), "bench.db"), 1, backends), gateways)
}

func agentConfig(b *testing.B, url, dir string, i int) agent.Config {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	keyPath := filepath.Join(dir, fmt.Sprintf("key-%d.pem", i))
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		b.Fatal(err)
	}
	return agent.Config{
		Server: url, InsecureHTTP: true, KeyPath: keyPath, OutDir: filepath.Join(dir, fmt.Sprintf("out-%d", i)),
		MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff), RestartCommands: []string{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func waitPending(b *testing.B, ctx context.Context, svc *provision.Service, gateways int) []string {
	for ctx.Err() == nil {
		l, err := svc.ListDevices(ctx, provision.ListFilter{State: gatehouse.StatePending, Limit: gateways})
		if err == nil && l.Total == gateways {
			ids := make([]string, 0, gateways)
			for _, d := range l.Devices {
				ids = append(ids, d.ID)
			}
			return ids
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatal("gateways never all enrolled")
	return nil
}

func approve(b *testing.B, f *fleet, id, name string) {
	body, _ := json.Marshal(map[string]string{"name": name})
	req, _ := http.NewRequest("POST", f.url+"/api/v1/devices/"+id+"/approve", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("approve %s: %s", id, resp.Status)
	}
}

// measure pairs each agent's finish with its device's approval time, and
// reads the device's step times.
func measure(b *testing.B, ctx context.Context, svc *provision.Service, dir string, approved map[string]time.Time, done []chan time.Time) fleetRun {
	var run fleetRun
	for i := range done {
		finished := <-done[i]
		name, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("out-%d", i), "device-name"))
		if err != nil {
			b.Fatalf("agent %d wrote no device-name: %v", i, err)
		}
		l, err := svc.ListDevices(ctx, provision.ListFilter{Search: string(bytes.TrimSpace(name)), Limit: 1})
		if err != nil || l.Total != 1 {
			b.Fatalf("device named %s: %v", name, err)
		}
		d, err := svc.Device(ctx, l.Devices[0].ID)
		if err != nil {
			b.Fatal(err)
		}
		run.toBundle = append(run.toBundle, finished.Sub(approved[d.ID]))
		slowest, sum := stepTimes(d)
		run.slowest, run.stepSum = append(run.slowest, slowest), append(run.stepSum, sum)
	}
	return run
}

func stepTimes(d *gatehouse.Device) (slowest, sum time.Duration) {
	for _, s := range d.Steps {
		if s.StartedAt != nil && s.FinishedAt != nil {
			took := s.FinishedAt.Sub(*s.StartedAt)
			slowest, sum = max(slowest, took), sum+took
		}
	}
	return slowest, sum
}
