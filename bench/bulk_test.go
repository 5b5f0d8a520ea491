package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/mender"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/simulate"
	"gatehouse/store"
	"gatehouse/vault"
)

// BenchmarkBulkApprove1000 approves 1,000 pending gateways in one bulk
// operation against a DPS simulator that throttles past its operations
// quota (429 with Retry-After, reference/external-apis.md §2.6), scaled
// from 1,000/min to 300 per 5 s so the run takes half a minute, not three.
// It fails unless every gateway ends provisioned with DPS having answered
// no 429 and seen no window above the quota.
func BenchmarkBulkApprove1000(b *testing.B) {
	const n, limit, window = 1000, 300, 5 * time.Second
	for b.Loop() {
		runBulk(b, n, limit, window)
	}
}

func runBulk(b *testing.B, n, limit int, window time.Duration) {
	ctx := context.Background()
	quota := simulate.NewQuota(limit, window)
	dpsState := simulate.NewDPS("")
	srv, err := simulate.NewDPSServer(simulate.DPSServerOptions{State: dpsState, Quota: quota})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	dcfg := srv.Config()
	dcfg.RateLimit, dcfg.RateWindow = limit, window
	dps, err := azure.NewDPS(dcfg)
	if err != nil {
		b.Fatal(err)
	}
	pki, err := simulate.NewPKI()
	if err != nil {
		b.Fatal(err)
	}
	if err := pki.SetRole(simulate.RecommendedVaultRole()); err != nil {
		b.Fatal(err)
	}
	m := simulate.NewMender()
	m.SetInventoryDelay(0)
	mb := mender.NewBackend(m)
	mb.TagWait = 20 * time.Millisecond
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "bulk.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	svc, err := provision.New(db, provision.Config{
		Backends:     []gatehouse.Backend{mb, azure.NewDPSBackend(dps), vault.NewBackend(pki, false, "gateway")},
		PollInterval: 100 * time.Millisecond, RetryBase: 50 * time.Millisecond, RetryMax: time.Second,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer svc.Stop(ctx)
	ids := enrollMany(b, svc, n)

	start := time.Now()
	op, err := svc.StartBulk(ctx, "user:bench", provision.BulkRequest{Action: gatehouse.BulkApprove, IDs: ids, Pattern: "site-a-{n:04}"})
	if err != nil {
		b.Fatal(err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last, stuck := -1, time.Now()
	for range tick.C {
		l, err := svc.ListDevices(ctx, provision.ListFilter{State: gatehouse.StateProvisioned, Limit: 1})
		if err != nil {
			b.Fatal(err)
		}
		if l.Total == n {
			break
		}
		if l.Total != last {
			last, stuck = l.Total, time.Now()
		} else if time.Since(stuck) > time.Minute {
			b.Fatalf("provisioning stuck at %d of %d", l.Total, n)
		}
	}
	took := time.Since(start)
	done, err := svc.Bulk(ctx, op.ID)
	if err != nil {
		b.Fatal(err)
	}
	st := quota.Stats()
	fmt.Printf("%d gateways approved and provisioned in %v (%.0f/min); DPS: %d operations, at most %d in one %v window (quota %d), %d throttled\n",
		n, took.Round(time.Millisecond), float64(n)/took.Minutes(), st.Requests, st.MaxPerWindow, window, limit, st.Throttled)
	if done.Done != n || st.Throttled != 0 || st.MaxPerWindow > limit || dpsState.Len() != n {
		b.Fatalf("bulk %d done %d failed; DPS %d throttled, %d in a window, %d enrollments", done.Done, done.Failed,
			st.Throttled, st.MaxPerWindow, dpsState.Len())
	}
	b.ReportMetric(float64(n)/took.Minutes(), "gateways/min")
}

func enrollMany(b *testing.B, svc *provision.Service, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		spki, err := protocol.MarshalPublicKey(k.Public())
		if err != nil {
			b.Fatal(err)
		}
		seal, err := protocol.DeriveSealKey(k)
		if err != nil {
			b.Fatal(err)
		}
		sig := &protocol.Signed{PublicKey: spki, Fingerprint: protocol.Fingerprint(spki), KeyType: protocol.KeyEd25519}
		st, err := svc.Enroll(context.Background(), sig, protocol.EnrollRequest{MAC: fmt.Sprintf("02:00:00:01:%02x:%02x", i>>8, i&0xff),
			SealKey: seal.PublicKey().Bytes()}, "192.0.2.1")
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = st.DeviceID
	}
	return ids
}
