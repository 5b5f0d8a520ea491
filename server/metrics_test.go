package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
)

// scrape reads /metrics as Prometheus does and parses it.
func (tb *testBundle) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(tb.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// series returns the metric of family name whose labels include want, or
// nil.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
	for _, m := range f.GetMetric() {
		if hasLabels(m, want) {
			return m
		}
	}
	return nil
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// value is a counter's or gauge's value, or a histogram's count.
func value(m *dto.Metric) float64 {
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

func TestMetricsAfterApproval(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	d := newDevice(t)
	id := tb.enroll(t, d).DeviceID
	before := tb.scrape(t)
	if got := value(series(before, "gatehouse_enrollments", map[string]string{"state": "pending"})); got != 1 {
		t.Errorf("pending enrollments before approval = %v, want 1", got)
	}
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+id+"/approve", map[string]string{"name": "gw-metrics"}, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	waitState(t, tb, id, gatehouse.StateProvisioned)
	for range 3 {
		if code := tb.call(t, tb.view, "GET", "/api/v1/devices/"+id, nil, nil); code != 200 {
			t.Fatalf("get device: %d", code)
		}
	}
	fams := tb.scrape(t)

	checks := []struct {
		name   string
		labels map[string]string
		want   func(float64) bool
		what   string
	}{
		{"gatehouse_approvals_total", map[string]string{"source": provision.ApprovedByOperator}, eq(1), "1"},
		{"gatehouse_enrollments", map[string]string{"state": "pending"}, eq(0), "0"},
		{"gatehouse_enrollments", map[string]string{"state": "provisioned"}, eq(1), "1"},
		{"gatehouse_enrollments", map[string]string{"state": "dismissed"}, eq(0), "0 (every state is reported)"},
		{"gatehouse_step_duration_seconds", map[string]string{"backend": "mender", "result": "success"}, atLeast(1), ">= 1 attempt"},
		{"gatehouse_step_duration_seconds", map[string]string{"backend": "dps", "result": "success"}, atLeast(1), ">= 1 attempt"},
		{"gatehouse_step_duration_seconds", map[string]string{"backend": "vault", "result": "success"}, atLeast(1), ">= 1 attempt"},
		{"gatehouse_jobs", map[string]string{"queue": "default", "state": "available"}, atLeast(0), "present"},
		{"gatehouse_jobs", map[string]string{"queue": "default", "state": "running"}, atLeast(0), "present"},
		{"gatehouse_long_polls_held", nil, eq(0), "0"},
		{"gatehouse_http_request_duration_seconds", map[string]string{"route": "GET /api/v1/devices/{id}", "code": "200"}, eq(3), "3 requests"},
		{"gatehouse_http_request_duration_seconds", map[string]string{"route": "POST /api/v1/devices/{id}/approve", "code": "200"}, eq(1), "1 request"},
		{"gatehouse_http_request_duration_seconds", map[string]string{"route": "POST " + protocol.PathEnroll, "code": "200"}, eq(1), "1 request"},
		{"go_goroutines", nil, atLeast(1), "> 0"},
		{"process_start_time_seconds", nil, atLeast(1), "> 0"},
	}
	for _, c := range checks {
		if got := value(series(fams, c.name, c.labels)); !c.want(got) {
			t.Errorf("%s%v = %v, want %s", c.name, c.labels, got, c.what)
		}
	}
	// The route label is the pattern, never the path with its id.
	for _, m := range fams["gatehouse_http_request_duration_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if strings.Contains(l.GetValue(), id) {
				t.Errorf("a series is labelled with the device id: %v", m.GetLabel())
			}
		}
	}
	if h := series(fams, "gatehouse_step_duration_seconds", map[string]string{"backend": "vault"}).GetHistogram(); h.GetSampleSum() <= 0 || h.GetSampleSum() > 60 {
		t.Errorf("vault step took %v s in all; want a plausible positive time", h.GetSampleSum())
	}
}

func eq(want float64) func(float64) bool      { return func(v float64) bool { return v == want } }
func atLeast(want float64) func(float64) bool { return func(v float64) bool { return v >= want } }

func TestMetricsCountHeldLongPolls(t *testing.T) {
	t.Parallel()
	n := &heldNotifier{Notifier: provision.NewLocalNotifier(), held: make(chan string, 1)}
	tb := setupWith(t, setupOpts{notifier: n, longPoll: 30 * time.Second})
	d := newDevice(t)
	id := tb.enroll(t, d).DeviceID
	done := make(chan int, 1)
	req := d.request(t, tb.url, protocol.PathWait, []byte(`{"state":"pending"}`))
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case <-n.held:
	case code := <-done:
		t.Fatalf("the long poll answered %d before it was held", code)
	case <-time.After(20 * time.Second):
		t.Fatal("the long poll was not held within 20 s")
	}
	held := func() float64 { return value(series(tb.scrape(t), "gatehouse_long_polls_held", nil)) }
	if got := held(); got != 1 {
		t.Fatalf("gatehouse_long_polls_held = %v while one is held, want 1", got)
	}
	if code := tb.call(t, tb.admin, "POST", "/api/v1/devices/"+id+"/approve", map[string]string{"name": "gw-held"}, nil); code != 200 {
		t.Fatalf("approve: %d", code)
	}
	if code := <-done; code != 200 {
		t.Fatalf("long poll: %d", code)
	}
	// The gauge drops as the handler returns, just after the answer left.
	if !pollUntil(20*time.Second, func() bool { return held() == 0 }) {
		t.Fatalf("gatehouse_long_polls_held = %v after the poll answered, want 0", held())
	}
}

// pollUntil polls cond until it holds or timeout passes, and says which.
func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

type readiness struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
	apiError
}

// readyz asks /readyz. On a loaded machine the probe's 2 s bound on the
// database can pass while the database is fine; that answer is asked again
// (for up to a minute) unless an unreachable database is what the test
// expects.
func readyz(t *testing.T, tb *testBundle, wantUnreachable bool) (int, readiness) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var r readiness
		code := tb.call(t, "", "GET", "/readyz", nil, &r)
		if wantUnreachable || r.Reason != "database unreachable" || time.Now().After(deadline) {
			return code, r
		}
	}
}

func TestReadyWhenDatabaseClosed(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if code, r := readyz(t, tb, false); code != 200 || r.Status != "ready" {
		t.Fatalf("readyz = %d %+v, want 200 ready", code, r)
	}
	// The job runner would keep failing on a closed database; stop it first.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tb.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	tb.db.Close()
	if code, r := readyz(t, tb, true); code != 503 || r.Reason != "database unreachable" || r.Error.Code != gatehouse.EUNAVAILABLE {
		t.Fatalf("readyz on a closed database = %d %+v, want 503 database unreachable", code, r)
	}
	if code := tb.call(t, "", "GET", "/healthz", nil, nil); code != 200 {
		t.Errorf("healthz = %d; liveness must not depend on the database", code)
	}
}

func TestReadyWhenSchemaBehind(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := t.Context()
	// As if the newest migration had not run yet: this binary knows it,
	// the database does not hold it.
	var version int
	var name string
	var at int64
	row := tb.db.SQL().QueryRowContext(ctx, `SELECT version, name, applied_at FROM schema_migrations ORDER BY version DESC LIMIT 1`)
	if err := row.Scan(&version, &name, &at); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.db.SQL().ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = ?`, version); err != nil {
		t.Fatal(err)
	}
	code, r := readyz(t, tb, false)
	if code != 503 || r.Reason != "schema behind" || r.Error.Code != gatehouse.EUNAVAILABLE || r.Error.Message == "" {
		t.Fatalf("readyz with migration %d missing = %d %+v, want 503 schema behind", version, code, r)
	}
	if _, err := tb.db.SQL().ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, version, name, at); err != nil {
		t.Fatal(err)
	}
	if code, r := readyz(t, tb, false); code != 200 || r.Status != "ready" {
		t.Fatalf("readyz once the migration is back = %d %+v, want 200", code, r)
	}
}

func TestRequestIDReachesHandlerLogs(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	// As serve does, the service logs through the same wrapped logger.
	tb := setupWith(t, setupOpts{logger: slog.New(gatehouse.OriginLogs(slog.NewJSONHandler(logs, nil)))})
	d := newDevice(t)
	id := tb.enroll(t, d).DeviceID

	req, _ := http.NewRequest("POST", tb.url+"/api/v1/devices/"+id+"/approve", strings.NewReader(`{"name":"gw-traced"}`))
	req.Header.Set("Authorization", "Bearer "+tb.admin)
	req.Header.Set("X-Request-Id", "trace-approve-7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "trace-approve-7" {
		t.Fatalf("approve = %d, X-Request-Id %q; want 200 and the caller's id echoed", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	// The service's own line about the approval carries the request's id.
	approved := logs.lines(t, "device approved")
	if len(approved) != 1 || approved[0]["request_id"] != "trace-approve-7" {
		t.Fatalf("device approved lines %v, want one with request_id trace-approve-7\n%s", approved, logs)
	}
	// The enrollment's line carries the id made up for that request.
	enrolled := logs.lines(t, "device enrolled")
	if len(enrolled) != 1 {
		t.Fatalf("device enrolled lines %v, want one", enrolled)
	}
	if rid, _ := enrolled[0]["request_id"].(string); len(rid) < 16 {
		t.Errorf("device enrolled request_id %q, want the generated id", rid)
	}
	// The access line, which names its id itself, names it once.
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"msg":"http request"`) && strings.Count(l, `"request_id"`) != 1 {
			t.Errorf("access line with the request id %d times: %s", strings.Count(l, `"request_id"`), l)
		}
	}
	// A line logged outside any request gets none.
	tb.srv.Logger.Info("outside a request")
	if out := logs.lines(t, "outside a request"); len(out) != 1 || out[0]["request_id"] != nil {
		t.Errorf("a line outside a request: %v, want one without request_id", out)
	}
}
