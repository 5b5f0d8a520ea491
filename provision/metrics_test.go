package provision_test

import (
	"context"
	"path/filepath"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"gatehouse"
	"gatehouse/metrics"
	"gatehouse/provision"
)

// TestMetricsRecordStepsAndApprovals provisions three gateways, one each
// by an operator, a bulk approval and the allowlist, with DPS failing the
// first two calls, and reads what the metrics package was told.
func TestMetricsRecordStepsAndApprovals(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	flaky := newGate(false)
	flaky.fails.Store(2)
	cfg := fastConfig(tb.backends())
	cfg.Backends.DPS = gatedDPS{DPS: tb.dps, gate: flaky}
	m := metrics.New(nil, nil)
	cfg.Metrics = m
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "metrics.db")), cfg)
	ctx := context.Background()

	byOperator := newGateway(t)
	id := tb.enroll(t, byOperator).DeviceID
	if _, err := tb.svc.Approve(ctx, "user:olga", id, provision.Approval{Name: "gw-op"}); err != nil {
		t.Fatal(err)
	}
	tb.waitFor(t, byOperator, gatehouse.StateProvisioned)

	inBulk := newGateway(t)
	id = tb.enroll(t, inBulk).DeviceID
	op, err := tb.svc.StartBulk(ctx, "user:olga", provision.BulkRequest{Action: gatehouse.BulkApprove,
		Items: []provision.BulkTarget{{ID: id, Name: "gw-bulk"}}})
	if err != nil {
		t.Fatal(err)
	}
	if done := waitBulk(t, tb.svc, op.ID); done.Done != 1 {
		t.Fatalf("bulk: %+v", done)
	}
	tb.waitFor(t, inBulk, gatehouse.StateProvisioned)

	listed := newGateway(t)
	mustImport(t, tb.svc, "mac,name\n"+listed.mac+",gw-listed\n")
	tb.enroll(t, listed)
	tb.waitFor(t, listed, gatehouse.StateProvisioned)

	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"gatehouse_approvals_total", map[string]string{"source": provision.ApprovedByOperator}, 1},
		{"gatehouse_approvals_total", map[string]string{"source": provision.ApprovedInBulk}, 1},
		{"gatehouse_approvals_total", map[string]string{"source": provision.ApprovedByAllowlist}, 1},
		{"gatehouse_step_failures_total", map[string]string{"backend": "dps"}, 2},
		{"gatehouse_step_duration_seconds", map[string]string{"backend": "dps", "result": metrics.ResultFailure}, 2},
		{"gatehouse_step_duration_seconds", map[string]string{"backend": "dps", "result": metrics.ResultSuccess}, 3},
		{"gatehouse_step_duration_seconds", map[string]string{"backend": "mender", "result": metrics.ResultSuccess}, 3},
		{"gatehouse_step_duration_seconds", map[string]string{"backend": "vault", "result": metrics.ResultSuccess}, 3},
	}
	for _, c := range checks {
		if got := gathered(fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, backend := range []string{"mender", "vault"} {
		if got := gathered(fams, "gatehouse_step_failures_total", map[string]string{"backend": backend}); got != -1 {
			t.Errorf("%s failures = %v; nothing failed there", backend, got)
		}
	}
}

// gathered is the value of a counter, or the count of a histogram, of the
// series of family name with labels; -1 when there is none.
func gathered(fams []*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !labelled(m, labels) {
				continue
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func labelled(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}
