package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gatehouse"
	"gatehouse/store"
)

// scrapeTimeout bounds the database reads of one scrape, below the 10 s
// Prometheus gives a scrape by default.
const scrapeTimeout = 5 * time.Second

// defaultQueue is River's default queue, where provisioning steps run; it
// is always reported so its depth reads 0 rather than missing.
const defaultQueue = "default"

var (
	enrollmentsDesc = prometheus.NewDesc("gatehouse_enrollments",
		"Gateways in each state, read from the database at scrape time.", []string{"state"}, nil)
	jobsDesc = prometheus.NewDesc("gatehouse_jobs",
		"Jobs waiting or running, by queue and state, read from the database at scrape time.", []string{"queue", "state"}, nil)
)

// dbCollector reads its series from the database at each scrape, so they
// are right on every replica sharing it and cost nothing between scrapes.
type dbCollector struct {
	src     Source
	timeout time.Duration
}

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- enrollmentsDesc
	ch <- jobsDesc
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	c.collectEnrollments(ctx, ch)
	c.collectJobs(ctx, ch)
}

// collectEnrollments reports every known state, 0 where no gateway is,
// so an alert on a state never sees the series vanish.
func (c *dbCollector) collectEnrollments(ctx context.Context, ch chan<- prometheus.Metric) {
	counts, err := c.src.CountDevicesByState(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(enrollmentsDesc, err)
		return
	}
	for _, s := range gatehouse.States {
		ch <- prometheus.MustNewConstMetric(enrollmentsDesc, prometheus.GaugeValue, float64(counts[string(s)]), string(s))
		delete(counts, string(s))
	}
	for s, n := range counts { // a state this binary does not know, from a newer replica
		ch <- prometheus.MustNewConstMetric(enrollmentsDesc, prometheus.GaugeValue, float64(n), s)
	}
}

// collectJobs reports each waiting state of every queue that has jobs,
// and of the default queue, 0 where none are.
func (c *dbCollector) collectJobs(ctx context.Context, ch chan<- prometheus.Metric) {
	counts, err := c.src.CountJobs(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	depth := map[string]map[string]int{defaultQueue: {}}
	for _, jc := range counts {
		if depth[jc.Queue] == nil {
			depth[jc.Queue] = map[string]int{}
		}
		depth[jc.Queue][jc.State] += jc.Count
	}
	for queue, states := range depth {
		for _, st := range store.WaitingJobStates {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(states[st]), queue, st)
		}
	}
}
