// Package metrics is gatehouse's Prometheus face: it owns the collectors
// and their registry, and is what provision and server report to. A nil
// *Metrics records nothing, so a server built without it still runs.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gatehouse"
	"gatehouse/store"
)

// Source is what a scrape reads from the database; *store.DB is one.
type Source interface {
	CountDevicesByState(ctx context.Context) (map[string]int, error)
	CountJobs(ctx context.Context) ([]store.JobCount, error)
}

// Result label values of gatehouse_step_duration_seconds.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// durationBuckets reach a minute: device long polls are held for about
// 30 s, and a backend step may spend its retries inside one attempt.
var durationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Metrics holds gatehouse's collectors in a registry of its own, so two
// servers in one process (tests, the demo) never share or clash.
type Metrics struct {
	reg          *prometheus.Registry
	handler      http.Handler
	approvals    *prometheus.CounterVec
	stepSeconds  *prometheus.HistogramVec
	stepFailures *prometheus.CounterVec
	longPolls    prometheus.Gauge
	httpSeconds  *prometheus.HistogramVec
}

// New makes the collectors, with the Go runtime's and the process's, and
// the series read from src at each scrape; src may be nil. Scrape errors
// go to log.
func New(src Source, log *slog.Logger) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		approvals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_approvals_total",
			Help: "Gateways approved, by who approved them: operator, bulk, allowlist or rekey.",
		}, []string{"source"}),
		stepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_step_duration_seconds",
			Help:    "Time one attempt of a provisioning step spent in its backend, by backend and result.",
			Buckets: durationBuckets,
		}, []string{"backend", "result"}),
		stepFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_step_failures_total",
			Help: "Failed attempts of provisioning steps, by backend; each is retried with backoff.",
		}, []string{"backend"}),
		longPolls: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_long_polls_held",
			Help: "Device long polls this server holds open now.",
		}),
		httpSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and status code; long polls and event streams are long by design.",
			Buckets: durationBuckets,
		}, []string{"route", "code"}),
	}
	m.reg.MustRegister(m.approvals, m.stepSeconds, m.stepFailures, m.longPolls, m.httpSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src != nil {
		m.reg.MustRegister(&dbCollector{src: src, timeout: scrapeTimeout})
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
		// A database that does not answer in time costs its series, not
		// the runtime's and the counters'.
		ErrorHandling: promhttp.ContinueOnError,
	})
	return m
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// Registry is the registry the collectors live in, for tests and for
// adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Approved counts one approval by source.
func (m *Metrics) Approved(source string) {
	if m == nil {
		return
	}
	m.approvals.WithLabelValues(source).Inc()
}

// StepRan records one attempt of step, which took so long and failed with
// err if not nil.
func (m *Metrics) StepRan(step gatehouse.StepName, took time.Duration, err error) {
	if m == nil {
		return
	}
	result := ResultSuccess
	if err != nil {
		result = ResultFailure
		m.stepFailures.WithLabelValues(string(step)).Inc()
	}
	m.stepSeconds.WithLabelValues(string(step), result).Observe(took.Seconds())
}

// LongPoll counts a long poll as held until the returned func is called.
func (m *Metrics) LongPoll() (done func()) {
	if m == nil {
		return func() {}
	}
	m.longPolls.Inc()
	return m.longPolls.Dec
}

// ObserveHTTP records one request by its route pattern ("GET
// /api/v1/devices/{id}"), never its path, so ids cannot grow the series
// without bound.
func (m *Metrics) ObserveHTTP(route string, code int, took time.Duration) {
	if m == nil {
		return
	}
	m.httpSeconds.WithLabelValues(route, strconv.Itoa(code)).Observe(took.Seconds())
}
