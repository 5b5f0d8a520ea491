package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/server"
	"gatehouse/store"
)

// bulkServer is a real gatehouse server (no backends: an approval
// provisions at once) with pending gateways seeded.
type bulkServer struct {
	svc  *provision.Service
	db   *store.DB
	env  map[string]string
	ids  []string
	macs []string
}

func newBulkServer(t *testing.T, n int) *bulkServer {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := &bulkServer{db: db}
	seeds := make([]store.Seed, n)
	for i := range seeds {
		id := fmt.Sprintf("bulkcli%05d", i)
		fp := protocol.Fingerprint([]byte(id))
		mac := fmt.Sprintf("02:00:00:00:0c:%02x", i)
		seeds[i] = store.Seed{Device: gatehouse.Device{ID: id, MAC: mac, Fingerprint: fp},
			Key: gatehouse.DeviceKey{Fingerprint: fp, KeyType: protocol.KeyEd25519, PublicKey: []byte(id), SealKey: []byte(id)}}
		b.ids, b.macs = append(b.ids, id), append(b.macs, mac)
	}
	if err := db.SeedPending(ctx, seeds); err != nil {
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
	srv.Addr = "127.0.0.1:0"
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
		svc.Stop(ctx)
	})
	token, _, err := svc.CreateToken(ctx, provision.TokenSpec{Name: "cli", Role: gatehouse.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	b.svc, b.env = svc, map[string]string{"GATEHOUSE_SERVER": srv.URL(), "GATEHOUSE_TOKEN": token}
	return b
}

func writeCSV(t *testing.T, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateways.csv")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (b *bulkServer) bulks(t *testing.T) int {
	t.Helper()
	var n int
	err := b.db.SQL().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM bulk_operations`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDevicesApproveFromCSV approves gateways named by MAC and by id from
// a file, following the progress; the one whose gateway was dismissed in
// the meantime fails alone, reported with its line, and the exit is 1.
func TestDevicesApproveFromCSV(t *testing.T) {
	t.Parallel()
	b := newBulkServer(t, 4)
	if _, err := b.svc.Dismiss(context.Background(), "user:x", b.ids[3]); err != nil {
		t.Fatal(err)
	}
	file := writeCSV(t, "# site A",
		"mac,name,labels",
		b.macs[0]+",site-a-001,group=edge",
		b.ids[1]+",site-a-002,",
		strings.ToUpper(b.macs[2])+",site-a-003",
		b.ids[3]+",site-a-004")
	code, stdout, stderr := runCLI(t, b.env, "approve", "--from-csv", file, "--progress-every", "1ms")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one gateway failed)\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "approved 3 of 4 gateways; 1 failed:") ||
		!strings.Contains(stdout, file+":6 "+b.ids[3]+" site-a-004: device "+b.ids[3]+" is dismissed, not pending") {
		t.Errorf("summary:\n%s", stdout)
	}
	if !strings.Contains(stderr, "approving [") || !strings.Contains(stderr, "] 3/4 done, 1 failed\n") || strings.Contains(stderr, "\r") {
		t.Errorf("progress on a non-terminal stderr: want lines ending in the final count, no redraws:\n%q", stderr)
	}
	for i, want := range []string{"site-a-001", "site-a-002", "site-a-003"} {
		d, err := b.svc.Device(context.Background(), b.ids[i])
		if err != nil || d.Name != want || d.State != gatehouse.StateProvisioned {
			t.Errorf("gateway %d: %+v %v, want provisioned as %s", i, d, err, want)
		}
	}
	d, _ := b.svc.Device(context.Background(), b.ids[0])
	if d.Labels["group"] != "edge" {
		t.Errorf("labels = %v", d.Labels)
	}
}

// TestDevicesApproveFromCSVBadRowStartsNothing: a row the file check
// refuses, or one the server refuses, is reported as FILE:LINE and no
// gateway is approved.
func TestDevicesApproveFromCSVBadRowStartsNothing(t *testing.T) {
	t.Parallel()
	b := newBulkServer(t, 3)
	for _, c := range []struct {
		name  string
		lines []string
		want  []string
	}{
		{"bad MAC and name", []string{b.macs[0] + ",gw-1", "02:00:zz:00:00:01,gw-2", b.macs[2] + ",Bad_Name"},
			[]string{":2: ", ":3: "}},
		{"unknown gateway", []string{b.macs[0] + ",gw-1", "", b.ids[1] + ",gw-2", "02:00:00:00:ff:ff,gw-3"},
			[]string{":4: no gateway has MAC 02:00:00:00:ff:ff"}},
	} {
		file := writeCSV(t, c.lines...)
		code, stdout, stderr := runCLI(t, b.env, "approve", "--from-csv", file)
		if code != 1 || stdout != "" {
			t.Errorf("%s: exit %d, stdout %q; want 1 and nothing", c.name, code, stdout)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, file+w) {
				t.Errorf("%s: stderr does not say %q:\n%s", c.name, file+w, stderr)
			}
		}
		if !strings.Contains(stderr, "nothing was started") {
			t.Errorf("%s: stderr does not say nothing was started:\n%s", c.name, stderr)
		}
	}
	if n := b.bulks(t); n != 0 {
		t.Errorf("%d bulk operations started, want none", n)
	}
	l, _ := b.svc.ListDevices(context.Background(), provision.ListFilter{State: gatehouse.StatePending})
	if l.Total != 3 {
		t.Errorf("%d gateways still pending, want 3", l.Total)
	}
	if code, _, stderr := runCLI(t, b.env, "approve", "--from-csv", filepath.Join(t.TempDir(), "missing.csv")); code != 2 ||
		!strings.Contains(stderr, "cannot read") {
		t.Errorf("missing file: exit %d, %s", code, stderr)
	}
}

// TestProgressBar: on a terminal the bar redraws in place with \r and
// ends on a new line; elsewhere it prints a line at most every interval,
// and always the final one.
func TestProgressBar(t *testing.T) {
	var tty bytes.Buffer
	p := newProgressBar(&tty, true, time.Hour, "approving")
	p.show(0, 0, 10)
	p.show(0, 0, 10) // unchanged: not redrawn
	p.show(5, 0, 10)
	p.show(9, 1, 10)
	p.end()
	want := "\rapproving [------------------------------] 0/10 done, 0 failed" +
		"\rapproving [###############---------------] 5/10 done, 0 failed" +
		"\rapproving [##############################] 9/10 done, 1 failed\n"
	if tty.String() != want {
		t.Errorf("terminal:\n%q\nwant\n%q", tty.String(), want)
	}

	var log bytes.Buffer
	now := time.Unix(0, 0)
	p = newProgressBar(&log, false, 5*time.Second, "approving")
	p.now = func() time.Time { return now }
	p.show(1, 0, 10) // first: printed
	now = now.Add(time.Second)
	p.show(2, 0, 10) // too soon
	now = now.Add(5 * time.Second)
	p.show(3, 0, 10) // printed
	p.show(10, 0, 10)
	p.end() // the final state, though too soon
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], " 1/10 done, 0 failed") || !strings.HasSuffix(lines[1], " 3/10 done, 0 failed") ||
		!strings.HasSuffix(lines[2], " 10/10 done, 0 failed") || strings.Contains(log.String(), "\r") {
		t.Errorf("log lines:\n%s", log.String())
	}
}
