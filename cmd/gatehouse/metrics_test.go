package main

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeExposesMetrics: the app serve and demo start answers /metrics
// with gatehouse's series, read from its database, and the runtime's.
func TestServeExposesMetrics(t *testing.T) {
	a, err := startApp(t.Context(), appConfig{Listen: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "g.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if resp, err := http.Get(a.server.URL() + "/readyz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp, err := http.Get(a.server.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{`gatehouse_enrollments{state="pending"} 0`, `gatehouse_jobs{queue="default",state="available"}`,
		"gatehouse_long_polls_held 0", `gatehouse_http_request_duration_seconds_count{code="200",route="GET /readyz"} 1`, "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
