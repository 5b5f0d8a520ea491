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
	"text/tabwriter"
	"time"
)

// ProcSample is what /proc says of one process at one moment.
type ProcSample struct {
	RSS     int64 // resident set size, bytes (VmRSS)
	FDs     int   // open file descriptors, sockets included
	Threads int
}

// SampleProcess reads a process's resident memory, thread count and open
// file descriptors from /proc. Linux only: elsewhere it returns an error.
func SampleProcess(pid int) (ProcSample, error) {
	var s ProcSample
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("sample process %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) == 0 {
			continue
		}
		switch key {
		case "VmRSS": // "VmRSS:	  12345 kB"
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return s, fmt.Errorf("sample process %d: VmRSS %q: %w", pid, val, err)
			}
			s.RSS = kb * 1024
		case "Threads":
			s.Threads, _ = strconv.Atoi(fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("sample process %d: %w", pid, err)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, fmt.Errorf("sample process %d: %w", pid, err)
	}
	s.FDs = len(fds)
	return s, nil
}

// DBSize is a SQLite database's size on disk: the file and its write-ahead
// log, where recent commits live until a checkpoint moves them.
func DBSize(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// metricsClient is the one client every /metrics read shares, so sampling
// holds one kept-alive connection and does not itself grow the server's
// open files.
var metricsClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}

// Metrics reads the server's /metrics and returns each unlabelled series
// by name (go_goroutines, process_open_fds...); labelled series are kept
// under their full text, e.g. `gatehouse_enrollments{state="pending"}`.
func (s *Server) Metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("read /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads Prometheus's text format: "name value" or
// "name{labels} value", optionally followed by a timestamp.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// Label values may hold spaces: the value follows the closing brace.
		name, rest := line, ""
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			name, rest = line[:i+1], line[i+1:]
		} else if i := strings.IndexByte(line, ' '); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return out, fmt.Errorf("metrics line %q: %w", line, err)
		}
		out[name] = v
	}
	return out, sc.Err()
}

// Sample is one second of a server's life as the soak and flood scenarios
// record it.
type Sample struct {
	At         time.Duration // since the series began
	Goroutines int           // go_goroutines from /metrics
	RSS        int64
	FDs        int
	DB         int64         // database file plus its -wal
	Pending    int           // gatehouse_enrollments{state="pending"}, -1 when absent
	Scrape     time.Duration // how long /metrics took to answer
}

// SampleServer takes one Sample of a running server. When /metrics does
// not answer within 10 s (Prometheus's default scrape timeout) the
// process's figures are still returned, with Goroutines and Pending -1,
// and the error.
func SampleServer(ctx context.Context, s *Server, since time.Time) (Sample, error) {
	out := Sample{At: time.Since(since), DB: DBSize(s.DB), Goroutines: -1, Pending: -1}
	pid := s.Pid()
	if pid == 0 {
		return out, fmt.Errorf("the server is not running")
	}
	p, err := SampleProcess(pid)
	if err != nil {
		return out, err
	}
	out.RSS, out.FDs = p.RSS, p.FDs
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start := time.Now()
	m, err := s.Metrics(callCtx)
	out.Scrape = time.Since(start)
	if err != nil {
		return out, err
	}
	g, ok := m["go_goroutines"]
	if !ok {
		return out, fmt.Errorf("/metrics has no go_goroutines")
	}
	out.Goroutines = int(g)
	if p, ok := m[`gatehouse_enrollments{state="pending"}`]; ok {
		out.Pending = int(p)
	}
	return out, nil
}

// Sampler samples a server every interval until Stop. It keeps every
// sample; one whose /metrics read failed is kept too, its Goroutines and
// Pending -1, and the failures counted.
type Sampler struct {
	stop     chan struct{}
	done     chan struct{}
	out      []Sample
	failures int
	err      error // the first failure
}

// StartSampler samples s now and then every interval.
func StartSampler(ctx context.Context, s *Server, interval time.Duration) *Sampler {
	sm := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(sm.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			x, err := SampleServer(ctx, s, start)
			if err != nil {
				sm.failures++
				if sm.err == nil {
					sm.err = err
				}
			}
			if x.RSS > 0 {
				sm.out = append(sm.out, x)
			}
			select {
			case <-sm.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return sm
}

// Stop ends the sampling and returns every sample, how many failed to
// read /metrics or /proc, and the first such error.
func (sm *Sampler) Stop() ([]Sample, int, error) {
	close(sm.stop)
	<-sm.done
	return sm.out, sm.failures, sm.err
}

// MiB spells a byte count in mebibytes.
func MiB(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }

// SampleTable formats samples as a table, one line per every-th sample
// and the last, then a min and a max line over all of them.
func SampleTable(samples []Sample, every int) []string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "T\tGOROUTINES\tRSS\tOPEN FILES\tDB+WAL\tPENDING\tSCRAPE\t")
	row := func(label string, s Sample) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", label, orDash(s.Goroutines), MiB(s.RSS), s.FDs, MiB(s.DB),
			orDash(s.Pending), s.Scrape.Round(time.Millisecond))
	}
	for i, s := range samples {
		if i%max(every, 1) == 0 || i == len(samples)-1 {
			row(s.At.Round(100*time.Millisecond).String(), s)
		}
	}
	if len(samples) > 0 {
		lo, hi := Extremes(samples)
		row("min", lo)
		row("max", hi)
	}
	tw.Flush()
	return strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
}

// orDash spells a figure /metrics did not give (-1) as "-".
func orDash(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// Extremes are the smallest and largest value of each column, each taken
// on its own (the two Samples are not moments of the series); a figure
// /metrics did not give (-1) counts in neither unless no sample has it.
func Extremes(samples []Sample) (lo, hi Sample) {
	lo, hi = samples[0], samples[0]
	for _, s := range samples[1:] {
		lo.Goroutines, hi.Goroutines = minKnown(lo.Goroutines, s.Goroutines), max(hi.Goroutines, s.Goroutines)
		lo.RSS, hi.RSS = min(lo.RSS, s.RSS), max(hi.RSS, s.RSS)
		lo.FDs, hi.FDs = min(lo.FDs, s.FDs), max(hi.FDs, s.FDs)
		lo.DB, hi.DB = min(lo.DB, s.DB), max(hi.DB, s.DB)
		lo.Pending, hi.Pending = minKnown(lo.Pending, s.Pending), max(hi.Pending, s.Pending)
		lo.Scrape, hi.Scrape = min(lo.Scrape, s.Scrape), max(hi.Scrape, s.Scrape)
	}
	return lo, hi
}

func minKnown(a, b int) int {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return min(a, b)
}

// SocketsTo counts the process's TCP connections whose remote port is one
// of ports: its kept-alive connections to the given servers, read from
// its file descriptors and the kernel's socket table. Linux only.
func SocketsTo(pid int, ports map[int]bool) (int, error) {
	inodes := map[string]bool{}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	for _, fd := range fds {
		link, err := os.Readlink(dir + "/" + fd.Name())
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue // no IPv6
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			_, port, ok := strings.Cut(f[2], ":")
			if p, err := strconv.ParseInt(port, 16, 32); ok && err == nil && ports[int(p)] {
				n++
			}
		}
	}
	return n, nil
}
