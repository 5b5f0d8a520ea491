package azure_test

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/azure"
	"gatehouse/protocol"
	"gatehouse/simulate"
)

// recordingInput is dpsInput keeping what the step records, as the
// service's Record does.
func recordingInput(name string, recorded map[string]string) *gatehouse.StepInput {
	in := dpsInput(name)
	in.Recorded = maps.Clone(recorded)
	in.Record = func(_ context.Context, kv map[string]string) error {
		maps.Copy(recorded, kv)
		return nil
	}
	return in
}

// TestDPSRekeyRotatesOnce rotates a provisioned gateway's keys, also when
// the PUT's answer is lost: DPS's create-or-update took the new keys, so a
// rerun must see that (the recorded digest of the replaced key no longer
// matches) and hand out the stored keys rather than rotate again.
func TestDPSRekeyRotatesOnce(t *testing.T) {
	for _, lost := range []bool{false, true} {
		ctx := context.Background()
		dps := simulate.NewDPS("0ne00TEST")
		b := azure.NewDPSBackend(dps)
		first, err := b.Provision(ctx, dpsInput("gw-rot"))
		if err != nil {
			t.Fatal(err)
		}
		old, _ := dps.GetEnrollment(ctx, "gw-rot")
		recorded := maps.Clone(first.Output)
		if lost {
			dps.LoseNext(1)
			if _, err := b.Rekey(ctx, recordingInput("gw-rot", recorded)); !errors.Is(err, simulate.ErrLostResponse) {
				t.Fatalf("lost PUT: %v", err)
			}
		}
		rotated, _ := dps.GetEnrollment(ctx, "gw-rot")
		res, err := b.Rekey(ctx, recordingInput("gw-rot", recorded))
		if err != nil {
			t.Fatal(err)
		}
		now, _ := dps.GetEnrollment(ctx, "gw-rot")
		key := string(res.Secrets[protocol.FieldDPSPrimaryKey])
		switch {
		case dps.Len() != 1 || now.RegistrationID != "gw-rot" || now.DeviceID != "gw-rot" || !now.IoTEdge:
			t.Fatalf("lost=%v: enrollment %+v (%d); want the same one", lost, now, dps.Len())
		case key != now.PrimaryKey || key == old.PrimaryKey || now.SecondaryKey == old.SecondaryKey:
			t.Fatalf("lost=%v: the step's key is not the enrollment's new one", lost)
		case lost && now.PrimaryKey != rotated.PrimaryKey:
			t.Fatalf("the rerun rotated again after the lost answer")
		}
		if strings.Contains(strings.Join(slicesOf(recorded), " "), old.PrimaryKey) {
			t.Error("the replaced key itself was recorded")
		}
		if err := dps.Register("gw-rot", old.PrimaryKey, ""); err == nil {
			t.Error("the replaced key still registers")
		}
	}
}

func slicesOf(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

// TestDPSRekeyChangedMeanwhile: the PUT names the etag the enrollment was
// read with, so a change in between is a 412 the step reports and a rerun
// resolves, never a silent overwrite.
func TestDPSRekeyChangedMeanwhile(t *testing.T) {
	ctx := context.Background()
	dps := simulate.NewDPS("0ne00TEST")
	b := azure.NewDPSBackend(racingDPS{DPS: dps})
	if _, err := b.Provision(ctx, dpsInput("gw-race")); err != nil {
		t.Fatal(err)
	}
	recorded := map[string]string{}
	_, err := b.Rekey(ctx, recordingInput("gw-race", recorded))
	if err == nil || !strings.Contains(err.Error(), "etag") {
		t.Fatalf("err = %v, want the 412 named", err)
	}
}

// racingDPS changes the enrollment between the step's read and its write.
type racingDPS struct{ *simulate.DPS }

func (r racingDPS) CreateEnrollment(ctx context.Context, e gatehouse.Enrollment) (gatehouse.Enrollment, error) {
	if e.ETag != "" {
		cur, _ := r.DPS.GetEnrollment(ctx, e.RegistrationID)
		if _, err := r.DPS.CreateEnrollment(ctx, cur); err != nil {
			return gatehouse.Enrollment{}, err
		}
	}
	return r.DPS.CreateEnrollment(ctx, e)
}

// TestDPSRekeyOverHTTP: through the real client, the rotation's PUT carries
// If-Match and, its answer lost on the wire, a rerun adopts the new keys.
func TestDPSRekeyOverHTTP(t *testing.T) {
	ctx := context.Background()
	srv := dpsServer(t, simulate.DPSServerOptions{IDScope: "0ne00ABCDEF", Hub: simulate.NewHub()})
	var ifMatch []string
	b := azure.NewDPSBackend(dpsClient(t, srv.Config()))
	first, err := b.Provision(ctx, dpsInput("gw-http"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Faults.LoseNext(1, func(r *http.Request) bool {
		if r.Method == http.MethodPut {
			ifMatch = append(ifMatch, r.Header.Get("If-Match"))
		}
		return r.Method == http.MethodPut
	})
	recorded := maps.Clone(first.Output)
	if _, err := b.Rekey(ctx, recordingInput("gw-http", recorded)); err == nil {
		t.Fatal("the lost answer did not reach the step")
	}
	res, err := b.Rekey(ctx, recordingInput("gw-http", recorded))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := srv.State.GetEnrollment(ctx, "gw-http")
	if string(res.Secrets[protocol.FieldDPSPrimaryKey]) != e.PrimaryKey || len(ifMatch) != 1 || ifMatch[0] == "" {
		t.Fatalf("step key matches: %v; PUTs with If-Match %q; want one conditional PUT whose keys the step hands out",
			string(res.Secrets[protocol.FieldDPSPrimaryKey]) == e.PrimaryKey, ifMatch)
	}
}
