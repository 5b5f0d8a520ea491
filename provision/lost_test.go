package provision_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"gatehouse"
)

// TestLostResponsesLeaveOneObjectPerBackend makes one backend at a time act
// on a request and then lose its answer, as after a timeout or a dropped
// connection, for each of the step's first calls. The retried steps must
// meet their own work: exactly one live object per gateway in every
// backend, and the bundle holds the one that lives.
func TestLostResponsesLeaveOneObjectPerBackend(t *testing.T) {
	t.Parallel()
	faults := map[string]func(tb *testBundle, n int){
		"mender": func(tb *testBundle, n int) { tb.mender.LoseNext(n) },
		"dps":    func(tb *testBundle, n int) { tb.dps.LoseNext(n) },
		"vault":  func(tb *testBundle, n int) { tb.pki.LoseNext(n) },
		"iothub": func(tb *testBundle, n int) { tb.hub.LoseNext(n) },
	}
	for backend, lose := range faults {
		for n := 1; n <= 2; n++ {
			t.Run(fmt.Sprintf("%s/%d", backend, n), func(t *testing.T) {
				t.Parallel()
				tb := setup(t)
				tb.mender.SetInventoryDelay(0)
				tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "lost.db")), followConfig(tb))
				lose(tb, n)
				name := fmt.Sprintf("gw-lost-%d", n)
				g, id := tb.provisionOne(t, name)
				tb.register(t, name, "hub-a.azure-devices.net")
				tb.waitFor(t, g, gatehouse.StateConfigured)
				checkOneEach(t, tb, id, name)
			})
		}
	}
}

func checkOneEach(t *testing.T, tb *testBundle, id, name string) {
	t.Helper()
	live := tb.pki.Live()
	if tb.mender.Len() != 1 || tb.dps.Len() != 1 || len(live) != 1 || len(tb.hub.Devices("hub-a.azure-devices.net")) != 1 {
		t.Fatalf("mender %d, dps %d, valid certificates %d, hub devices %d; want 1 each",
			tb.mender.Len(), tb.dps.Len(), len(live), len(tb.hub.Devices("hub-a.azure-devices.net")))
	}
	d, err := tb.svc.Device(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got := stepOutput(d, gatehouse.StepVault)[gatehouse.OutSerial]; got != live[0].Serial {
		t.Errorf("bundle certificate %s, valid certificate %s", got, live[0].Serial)
	}
	dev := tb.mender.Devices()[0]
	if dev.ID != stepOutput(d, gatehouse.StepMender)[gatehouse.OutMenderDeviceID] || len(dev.AuthSets) != 1 || tb.mender.TagsOf(dev.ID)["name"] != name {
		t.Errorf("mender device %+v, tags %v; want the recorded one with one auth set and its name", dev, tb.mender.TagsOf(dev.ID))
	}
	if _, ok := tb.hub.Configuration("hub-a.azure-devices.net", name); !ok {
		t.Error("the manifest was not applied")
	}
}
