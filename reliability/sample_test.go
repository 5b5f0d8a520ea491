package main

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// SampleProcess must see this process's own open files change.
func TestSampleProcess(t *testing.T) {
	before, err := SampleProcess(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if before.RSS <= 0 || before.FDs <= 0 || before.Threads <= 0 {
		t.Fatalf("sample %+v", before)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	after, err := SampleProcess(os.Getpid())
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if after.FDs != before.FDs+1 {
		t.Errorf("open files %d after opening one, %d before", after.FDs, before.FDs)
	}
}

// SocketsTo must count a connection to the port given and not to others.
func TestSocketsTo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if _, err := SampleProcess(os.Getpid()); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := SocketsTo(os.Getpid(), map[int]bool{port: true})
	if err != nil || n != 1 {
		t.Errorf("connections to the listener: %d, %v; want 1", n, err)
	}
	if n, _ := SocketsTo(os.Getpid(), map[int]bool{port + 1: true}); n != 0 {
		t.Errorf("connections to another port: %d, want 0", n)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
gatehouse_enrollments{state="pending"} 7
odd{reason="a } b",x="y"} 3 1700000000
process_resident_memory_bytes 1.2e+07
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"go_goroutines": 42, `gatehouse_enrollments{state="pending"}`: 7,
		`odd{reason="a } b",x="y"}`: 3, "process_resident_memory_bytes": 1.2e7}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, m[k], v, m)
		}
	}
}

// series makes one sample a second for n seconds from f.
func series(n int, f func(i int) Sample) []Sample {
	out := make([]Sample, n)
	for i := range out {
		out[i] = f(i)
		out[i].At = time.Duration(i) * time.Second
	}
	return out
}

// checkFlat must pass a noisy flat series and catch each kind of growth.
func TestCheckFlat(t *testing.T) {
	flat := func(i int) Sample {
		return Sample{Goroutines: 100 + i%7, RSS: 40<<20 + int64(i%5)<<20, FDs: 30 + i%3, DB: 4<<20 + int64(i)*10<<10}
	}
	cases := []struct {
		name  string
		f     func(i int) Sample
		fails string
	}{
		{"flat", flat, ""},
		{"a stall's burst", func(i int) Sample { // more agents wait for a while: not a leak
			s := flat(i)
			if i >= 95 && i < 110 {
				s.FDs, s.Goroutines = s.FDs+20, s.Goroutines+60
			}
			return s
		}, ""},
		{"goroutine leak", func(i int) Sample { s := flat(i); s.Goroutines += i; return s }, "goroutines grows"},
		{"file leak", func(i int) Sample { s := flat(i); s.FDs += i / 2; return s }, "open files grows"},
		{"memory leak", func(i int) Sample { s := flat(i); s.RSS += int64(i) << 20; return s }, "RSS grows"},
		{"database accelerates", func(i int) Sample { s := flat(i); s.DB += int64(i*i) << 10; return s }, "database grows faster"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lines, err := checkFlat(series(120, c.f), 10*time.Second, 120*time.Second)
			if len(lines) != 1+len(flatRules)+1 {
				t.Errorf("lines: %q", lines)
			}
			switch {
			case c.fails == "" && err != nil:
				t.Errorf("a flat series failed: %v", err)
			case c.fails != "" && (err == nil || !strings.Contains(err.Error(), c.fails)):
				t.Errorf("error %v, want one saying %q", err, c.fails)
			}
		})
	}
	if _, err := checkFlat(series(5, flat), 0, 5*time.Second); err == nil {
		t.Error("five samples passed: too few to split in thirds")
	}
}
