package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/internal/pgtest"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/server"
	"gatehouse/store"
)

// A wait sees an approval committed just before it, however many waits
// read the gateway's pending status before (on SQLite those are kept in
// memory, see store.statusCache): approved by the process the gateway
// asks, by another process on the same SQLite file, and by another
// replica on PostgreSQL.
func TestWaitSeesApprovalJustCommitted(t *testing.T) {
	t.Parallel()
	sqlite := func(t testing.TB) string { return filepath.Join(t.TempDir(), "gatehouse.db") }
	cases := []struct {
		name       string
		dsn        func(t testing.TB) string
		otherStack bool
	}{
		{"sqlite, same process", sqlite, false},
		{"sqlite, another process", sqlite, true},
		{"postgres, same replica", pgtest.URL, false},
		{"postgres, another replica", pgtest.URL, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn := tc.dsn(t) // pgtest.URL skips without PostgreSQL
			asked := startServiceStack(t, dsn)
			approver := asked
			if tc.otherStack {
				approver = startServiceStack(t, dsn)
			}
			for round := range 3 {
				d := newDevice(t)
				d.mac = fmt.Sprintf("02:00:00:00:01:%02x", round)
				var st protocol.Status
				if code := do(t, d.request(t, asked.url, protocol.PathEnroll, d.enrollBody(t, d.mac)), &st); code != http.StatusOK {
					t.Fatalf("enroll: %d", code)
				}
				for range 5 {
					if got := waitOnce(t, d, asked.url); got.State != string(gatehouse.StatePending) {
						t.Fatalf("before approval: %s, want pending", got.State)
					}
				}
				// Approved in the middle of other gateways' waits too, so a
				// batch of nonces may be in flight as it commits.
				done := make(chan struct{})
				go func() {
					defer close(done)
					other := newDevice(t)
					other.mac = fmt.Sprintf("02:00:00:00:02:%02x", round)
					if code := do(t, other.request(t, asked.url, protocol.PathEnroll, other.enrollBody(t, other.mac)), nil); code != http.StatusOK {
						t.Errorf("enroll another gateway: %d", code)
						return
					}
					for range 20 {
						waitOnce(t, other, asked.url)
					}
				}()
				if _, err := approver.svc.Approve(context.Background(), "test", st.DeviceID, provision.Approval{Name: fmt.Sprint("gw-fresh-", round)}); err != nil {
					t.Fatalf("approve: %v", err)
				}
				if got := waitOnce(t, d, asked.url); got.State == string(gatehouse.StatePending) {
					t.Errorf("round %d: a wait after the approval committed answered pending", round)
				}
				<-done
			}
		})
	}
}

// waitOnce sends one key-signed wait that answers at once ("" is no state)
// and returns its answer.
func waitOnce(t *testing.T, d *device, url string) protocol.Status {
	t.Helper()
	body, _ := json.Marshal(protocol.WaitRequest{State: ""})
	var st protocol.Status
	if code := do(t, d.request(t, url, protocol.PathWait, body), &st); code != http.StatusOK {
		t.Errorf("wait: %d", code)
	}
	return st
}

// serviceStack is a stack whose service the test drives directly.
type serviceStack struct {
	url string
	svc *provision.Service
}

func startServiceStack(t *testing.T, dsn string) *serviceStack {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := provision.New(db, provision.Config{PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := server.New(svc)
	srv.Addr, srv.DeviceRate = "127.0.0.1:0", rate.Inf
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
		svc.Stop(ctx)
		db.Close()
	})
	return &serviceStack{url: srv.URL(), svc: svc}
}
