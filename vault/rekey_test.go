package vault

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/simulate"
)

// TestRekeyNewCertificateOldLeftForTheService: a re-key gets a certificate
// for the new key under the same name, and leaves the one it replaces valid
// until gatehouse, having recorded the new one, revokes it with RevokeCert.
// An attempt whose answer was lost is revoked by the rerun; the sweep lists
// certificates from minutes before the attempt, so a replaced certificate
// that young may go with it, but the new one never does.
func TestRekeyNewCertificateOldLeftForTheService(t *testing.T) {
	for _, lost := range []bool{false, true} {
		ctx := context.Background()
		env := newStepEnv(t, simulate.RecommendedVaultRole(), true)
		first, err := env.step.Provision(ctx, stepIn(t, "gw-07"))
		if err != nil {
			t.Fatal(err)
		}
		oldSerial := first.Output[gatehouse.OutSerial]
		in := stepIn(t, "gw-07") // the new key's CSR
		maps.Copy(in.Recorded, first.Output)
		if lost {
			env.sim.Faults.LoseNext(1, func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/sign/") })
			if _, err := env.step.Rekey(ctx, in); err == nil {
				t.Fatal("the lost answer did not reach the step")
			}
		}
		res, err := env.step.Rekey(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		newSerial := res.Output[gatehouse.OutSerial]
		live := serials(env.sim.State.Live())
		switch {
		case newSerial == oldSerial || !live[newSerial]:
			t.Fatalf("lost=%v: new serial %s (valid %v), old %s", lost, newSerial, live[newSerial], oldSerial)
		case !lost && (len(live) != 2 || !live[oldSerial]):
			t.Fatalf("valid %v; want the old one still valid beside the new", live)
		case lost && len(env.sim.State.Certificates()) != 3:
			t.Fatalf("%d issued; want the lost attempt's too", len(env.sim.State.Certificates()))
		}
		for range 2 { // revoking twice succeeds
			if err := env.step.RevokeCert(ctx, oldSerial); err != nil {
				t.Fatal(err)
			}
		}
		if live := serials(env.sim.State.Live()); len(live) != 1 || !live[newSerial] {
			t.Fatalf("lost=%v: valid %v; want only the new certificate", lost, live)
		}
		if err := env.step.RevokeCert(ctx, "01:02:03"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
			t.Errorf("unknown serial: %v, want not found", err)
		}
	}
}

func serials(certs []gatehouse.Certificate) map[string]bool {
	out := map[string]bool{}
	for _, c := range certs {
		out[c.Serial] = true
	}
	return out
}
