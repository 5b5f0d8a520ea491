package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"gatehouse"
	"gatehouse/metrics"
	"gatehouse/store"
)

// fakeSource answers a scrape's database reads with fixed counts.
type fakeSource struct {
	states map[string]int
	jobs   []store.JobCount
	err    error
}

func (f fakeSource) CountDevicesByState(context.Context) (map[string]int, error) {
	return f.states, f.err
}

func (f fakeSource) CountJobs(context.Context) ([]store.JobCount, error) { return f.jobs, f.err }

func scrape(t *testing.T, m *metrics.Metrics) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestScrapeReadsTheDatabase(t *testing.T) {
	src := fakeSource{
		states: map[string]int{"pending": 4, "configured": 2, "from-a-newer-replica": 1},
		jobs:   []store.JobCount{{Queue: "follow", State: "scheduled", Count: 3}, {Queue: "default", State: "running", Count: 1}},
	}
	code, body := scrape(t, metrics.New(src, nil))
	if code != http.StatusOK {
		t.Fatalf("scrape = %d: %s", code, body)
	}
	want := []string{
		`gatehouse_enrollments{state="pending"} 4`,
		`gatehouse_enrollments{state="configured"} 2`,
		`gatehouse_enrollments{state="dismissed"} 0`,
		`gatehouse_enrollments{state="from-a-newer-replica"} 1`,
		`gatehouse_jobs{queue="follow",state="scheduled"} 3`,
		`gatehouse_jobs{queue="follow",state="available"} 0`,
		`gatehouse_jobs{queue="default",state="running"} 1`,
		`gatehouse_jobs{queue="default",state="retryable"} 0`,
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("scrape lacks %q", w)
		}
	}
	for _, s := range gatehouse.States {
		if !strings.Contains(body, `gatehouse_enrollments{state="`+string(s)+`"}`) {
			t.Errorf("state %s is not reported", s)
		}
	}
}

// A database that does not answer costs its own series only.
func TestScrapeWithoutTheDatabase(t *testing.T) {
	m := metrics.New(fakeSource{err: errors.New("database is closed")}, nil)
	m.Approved("operator")
	code, body := scrape(t, m)
	if code != http.StatusOK {
		t.Fatalf("scrape = %d: %s", code, body)
	}
	if strings.Contains(body, "gatehouse_enrollments{") || strings.Contains(body, "gatehouse_jobs{") {
		t.Errorf("series from a failed read were served:\n%s", body)
	}
	if !strings.Contains(body, `gatehouse_approvals_total{source="operator"} 1`) || !strings.Contains(body, "go_goroutines") {
		t.Errorf("the other series are missing:\n%s", body)
	}
}

func TestRecorders(t *testing.T) {
	m := metrics.New(nil, nil)
	m.StepRan(gatehouse.StepDPS, 2*time.Second, errors.New("dps: 503"))
	m.StepRan(gatehouse.StepDPS, time.Second, nil)
	done := m.LongPoll()
	m.ObserveHTTP("GET /api/v1/devices/{id}", 404, 3*time.Millisecond)
	if n := testutil.CollectAndCount(m.Registry(), "gatehouse_step_duration_seconds"); n != 2 {
		t.Errorf("%d step duration series, want 2 (success and failure)", n)
	}
	expected := `
# HELP gatehouse_step_failures_total Failed attempts of provisioning steps, by backend; each is retried with backoff.
# TYPE gatehouse_step_failures_total counter
gatehouse_step_failures_total{backend="dps"} 1
# HELP gatehouse_long_polls_held Device long polls this server holds open now.
# TYPE gatehouse_long_polls_held gauge
gatehouse_long_polls_held 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(expected), "gatehouse_step_failures_total", "gatehouse_long_polls_held"); err != nil {
		t.Error(err)
	}
	done()
	_, body := scrape(t, m)
	for _, w := range []string{"gatehouse_long_polls_held 0", `gatehouse_http_request_duration_seconds_count{code="404",route="GET /api/v1/devices/{id}"} 1`,
		`gatehouse_step_duration_seconds_sum{backend="dps",result="failure"} 2`} {
		if !strings.Contains(body, w) {
			t.Errorf("scrape lacks %q", w)
		}
	}
}

// A nil *Metrics records nothing and does not panic: a server or service
// built without metrics still runs.
func TestNilMetrics(t *testing.T) {
	var m *metrics.Metrics
	m.Approved("operator")
	m.StepRan(gatehouse.StepVault, time.Second, nil)
	m.LongPoll()()
	m.ObserveHTTP("GET /healthz", 200, time.Millisecond)
	if code, _ := scrape(t, m); code != http.StatusNotFound {
		t.Errorf("nil metrics scrape = %d, want 404", code)
	}
}
