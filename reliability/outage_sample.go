package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sample is one second's look at the server process.
type sample struct {
	at    time.Duration // since sampling began
	rssKB int           // VmRSS from /proc/PID/status
	jobs  int           // gatehouse_jobs summed over queues and states: work waiting or running
	phase string        // what the scenario was doing
}

// sampler reads the server's RSS and job queue each second until stopped.
type sampler struct {
	srv   *Server
	start time.Time
	mu    sync.Mutex
	phase string
	out   []sample
	stop  context.CancelFunc
	done  chan struct{}
}

func startSampler(ctx context.Context, srv *Server, phase string) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{srv: srv, start: time.Now(), phase: phase, stop: cancel, done: make(chan struct{})}
	go s.run(ctx)
	return s
}

func (s *sampler) run(ctx context.Context) {
	defer close(s.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.take(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *sampler) take(ctx context.Context) {
	rss, err := rssKB(s.srv.Pid())
	if err != nil {
		return // the process is gone; the scenario reports that
	}
	jobs, err := queueDepth(ctx, s.srv.URL)
	if err != nil {
		jobs = -1 // a scrape that failed; shown, not counted in the max
	}
	s.mu.Lock()
	s.out = append(s.out, sample{at: time.Since(s.start), rssKB: rss, jobs: jobs, phase: s.phase})
	s.mu.Unlock()
}

// setPhase labels the samples from now on.
func (s *sampler) setPhase(p string) {
	s.mu.Lock()
	s.phase = p
	s.mu.Unlock()
}

func (s *sampler) finish() []sample {
	s.stop()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out
}

func rssKB(pid int) (int, error) {
	if pid == 0 {
		return 0, fmt.Errorf("no server process")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// queueDepth sums the gatehouse_jobs series of /metrics.
func queueDepth(ctx context.Context, base string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return 0, fmt.Errorf("/metrics: %s", resp.Status)
	}
	total := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "gatehouse_jobs{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("/metrics: %q: %w", line, err)
		}
		total += int(v)
	}
	return total, sc.Err()
}

// peaks are the largest RSS and queue the samples saw.
func peaks(samples []sample) (rssKB, jobs int) {
	for _, s := range samples {
		rssKB, jobs = max(rssKB, s.rssKB), max(jobs, s.jobs)
	}
	return rssKB, jobs
}

// sampleTable prints about rows samples, evenly spread, and the last.
func sampleTable(samples []sample, rows int) []string {
	out := []string{fmt.Sprintf("  %8s  %8s  %6s  %s", "t", "RSS MB", "jobs", "phase")}
	step := max(1, len(samples)/rows)
	for i, s := range samples {
		if i%step != 0 && i != len(samples)-1 {
			continue
		}
		out = append(out, fmt.Sprintf("  %8s  %8.1f  %6d  %s", s.at.Round(time.Second), float64(s.rssKB)/1024, s.jobs, s.phase))
	}
	return out
}
