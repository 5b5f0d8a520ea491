package mender_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/mender"
	"gatehouse/protocol"
	"gatehouse/simulate"
)

const stepMAC = "02:00:00:00:07:01"

// stepCase is a device state deviceauth may already hold at approval.
type stepCase struct {
	// before puts the device into its state the way it gets there on a real
	// server: ours and other are the keys of the approved gateway and of
	// some other device.
	before func(t *testing.T, m *simulate.Mender, ours, other ed25519.PrivateKey)
	// status is ours' auth set status afterwards; "" means the step fails
	// with an error containing fails and leaves Mender unchanged.
	status string
	fails  string
}

// The states and what deviceauth does with them come from mendersoftware/
// mender-server backend/services/deviceauth/devauth/devauth.go
// (PreauthorizeDevice, SubmitAuthRequest, setAuthSetStatus) and from the
// behaviour observed on a real server (reference external-apis.md §0): the
// client asks first, so its auth set is often pending at approval;
// preauthorizing then answers 409 and accepts nothing.
var stepCases = map[string]stepCase{
	"Absent": {
		before: func(*testing.T, *simulate.Mender, ed25519.PrivateKey, ed25519.PrivateKey) {},
		status: gatehouse.MenderPreauthorized,
	},
	"PendingWithOurKey": {
		before: func(t *testing.T, m *simulate.Mender, ours, _ ed25519.PrivateKey) { asks(t, m, ours) },
		status: gatehouse.MenderAccepted,
	},
	"Preauthorized": {
		before: func(t *testing.T, m *simulate.Mender, ours, _ ed25519.PrivateKey) {
			if _, err := m.Preauthorize(context.Background(), map[string]string{"mac": stepMAC}, pemOf(ours), false); err != nil {
				t.Fatal(err)
			}
		},
		status: gatehouse.MenderPreauthorized,
	},
	"Accepted": {
		before: func(t *testing.T, m *simulate.Mender, ours, _ ed25519.PrivateKey) {
			setStatus(t, m, asks(t, m, ours), gatehouse.MenderAccepted)
		},
		status: gatehouse.MenderAccepted,
	},
	"Rejected": {
		before: func(t *testing.T, m *simulate.Mender, ours, _ ed25519.PrivateKey) {
			setStatus(t, m, asks(t, m, ours), gatehouse.MenderRejected)
		},
		fails: "rejected in Mender",
	},
	"AnotherKey": {
		before: func(t *testing.T, m *simulate.Mender, _, other ed25519.PrivateKey) { asks(t, m, other) },
		fails:  "another key",
	},
	"AnotherKeyAccepted": {
		before: func(t *testing.T, m *simulate.Mender, ours, other ed25519.PrivateKey) {
			setStatus(t, m, asks(t, m, other), gatehouse.MenderAccepted)
			asks(t, m, ours)
		},
		fails: "another accepted key",
	},
}

func TestStepHandlesEveryDeviceState(t *testing.T) {
	for name, tc := range stepCases {
		t.Run(name, func(t *testing.T) {
			m := simulate.NewMender()
			m.SetInventoryDelay(0)
			ours, other := newKey(t), newKey(t)
			tc.before(t, m, ours, other)
			before := m.Devices()
			in, recorded := stepInput(spkiOf(ours), "gw-state")
			res, err := mender.NewBackend(m).Provision(context.Background(), in)
			if tc.fails != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fails) {
					t.Fatalf("err = %v, want one containing %q", err, tc.fails)
				}
				if after := m.Devices(); !sameDevices(after, before) {
					t.Errorf("a refused step changed Mender: %+v, was %+v", after, before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkProvisioned(t, m, res, recorded, spkiOf(ours), tc.status)
		})
	}
}

func checkProvisioned(t *testing.T, m *simulate.Mender, res *gatehouse.StepResult, recorded map[string]string, ours []byte, status string) {
	t.Helper()
	id := res.Output[gatehouse.OutMenderDeviceID]
	if m.Len() != 1 || id == "" || recorded[gatehouse.OutMenderDeviceID] != id {
		t.Fatalf("%d devices, output %v, recorded %v; want one device, its id recorded", m.Len(), res.Output, recorded)
	}
	dev, _ := m.Device(id)
	if got := setOf(dev, ours); got == nil || got.Status != status {
		t.Errorf("our auth set = %+v, want status %s", got, status)
	}
	if tags := m.TagsOf(id); tags["name"] != "gw-state" {
		t.Errorf("tags = %v, want the name", tags)
	}
}

// TestStepWaitsForInventory: inventory answers a tag PATCH with 200 for a
// device it does not hold yet and keeps nothing (observed on a real
// server, external-apis.md §0), so the step reads the tag back and fails
// with the reason until inventory holds the device.
func TestStepWaitsForInventory(t *testing.T) {
	m := simulate.NewMender()
	m.SetInventoryDelay(time.Hour)
	b := mender.NewBackend(m)
	b.TagTries, b.TagWait = 2, time.Millisecond
	in, _ := stepInput(spkiOf(newKey(t)), "gw-late")
	_, err := b.Provision(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), "inventory does not hold device") {
		t.Fatalf("err = %v, want the step to say inventory does not hold the device yet", err)
	}
	m.IndexNow()
	if _, err := b.Provision(context.Background(), in); err != nil {
		t.Fatalf("after inventory caught up: %v", err)
	}
	if m.Len() != 1 {
		t.Errorf("%d devices after the retry, want 1", m.Len())
	}
}

// TestStepLostResponses repeats the step after each of its calls lost its
// answer: the rerun meets its own work and ends with one device, accepted
// or preauthorized, tagged.
func TestStepLostResponses(t *testing.T) {
	for _, pending := range []bool{false, true} {
		for lost := 1; lost <= 3; lost++ {
			m := simulate.NewMender()
			m.SetInventoryDelay(0)
			priv := newKey(t)
			if pending {
				asks(t, m, priv)
			}
			key := spkiOf(priv)
			m.LoseNext(lost)
			b := mender.NewBackend(m)
			in, _ := stepInput(key, "gw-lost")
			var err error
			for try := 0; try <= lost; try++ {
				if _, err = b.Provision(context.Background(), in); err == nil {
					break
				}
				if !errors.Is(err, simulate.ErrLostResponse) {
					t.Fatalf("pending=%v lost=%d: %v", pending, lost, err)
				}
			}
			if err != nil || m.Len() != 1 {
				t.Fatalf("pending=%v lost=%d: err %v, %d devices; want success and one device", pending, lost, err, m.Len())
			}
			dev := m.Devices()[0]
			if s := setOf(dev, key); s == nil || (s.Status != gatehouse.MenderAccepted && s.Status != gatehouse.MenderPreauthorized) || len(dev.AuthSets) != 1 {
				t.Errorf("pending=%v lost=%d: device %+v, want one trusted auth set", pending, lost, dev)
			}
		}
	}
}

func TestDecommission(t *testing.T) {
	m := simulate.NewMender()
	m.SetInventoryDelay(0)
	b := mender.NewBackend(m)
	in, recorded := stepInput(spkiOf(newKey(t)), "gw-old")
	if _, err := b.Provision(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	in.Recorded = recorded
	dry, err := b.Decommission(context.Background(), in, true)
	if err != nil || len(dry) != 1 || dry[0].Result != "would remove" || m.Len() != 1 {
		t.Fatalf("dry run = %+v, %v with %d devices; want one 'would remove' and nothing removed", dry, err, m.Len())
	}
	for _, want := range []string{"removed", "already gone"} {
		got, err := b.Decommission(context.Background(), in, false)
		if err != nil || len(got) != 1 || got[0].Result != want {
			t.Errorf("decommission = %+v, %v; want %s", got, err, want)
		}
	}
	if m.Len() != 0 {
		t.Errorf("%d devices left", m.Len())
	}
}

func stepInput(spki []byte, name string) (*gatehouse.StepInput, map[string]string) {
	recorded := map[string]string{}
	return &gatehouse.StepInput{
		Device:   &gatehouse.Device{ID: "d1", Name: name, MAC: stepMAC},
		Key:      &gatehouse.DeviceKey{PublicKey: spki},
		Recorded: map[string]string{},
		Record: func(_ context.Context, kv map[string]string) error {
			for k, v := range kv {
				recorded[k] = v
			}
			return nil
		},
	}, recorded
}

// asks sends the auth request a real Mender client sends at boot, signed
// with its key (deviceauth devices_v1.yaml; the body's id_data is the
// identity as a JSON string). deviceauth answers 401 and keeps the device
// pending. It returns the device id.
func asks(t *testing.T, m *simulate.Mender, key ed25519.PrivateKey) string {
	t.Helper()
	identity, _ := json.Marshal(map[string]string{"mac": stepMAC})
	body, _ := json.Marshal(map[string]string{"id_data": string(identity), "pubkey": pemOf(key), "tenant_token": ""})
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, body))
	if _, err := m.AuthRequest(context.Background(), body, sig); err == nil {
		t.Fatal("an unapproved device got a token")
	}
	for _, d := range m.Devices() {
		if d.IdentityData["mac"] == stepMAC {
			return d.ID
		}
	}
	t.Fatal("the auth request left no device")
	return ""
}

// setStatus moves the device's newest auth set to status, as an operator
// in Mender's UI would.
func setStatus(t *testing.T, m *simulate.Mender, id, status string) {
	t.Helper()
	dev, _ := m.GetDevice(context.Background(), id)
	if err := m.SetAuthSetStatus(context.Background(), id, dev.AuthSets[len(dev.AuthSets)-1].ID, status); err != nil {
		t.Fatal(err)
	}
}

func setOf(dev gatehouse.MenderDevice, spki []byte) *gatehouse.MenderAuthSet {
	want := protocol.PublicKeyPEM(spki)
	for i, s := range dev.AuthSets {
		if s.PublicKey == want {
			return &dev.AuthSets[i]
		}
	}
	return nil
}

func sameDevices(a, b []gatehouse.MenderDevice) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Status != b[i].Status || len(a[i].AuthSets) != len(b[i].AuthSets) {
			return false
		}
		for j := range a[i].AuthSets {
			if a[i].AuthSets[j] != b[i].AuthSets[j] {
				return false
			}
		}
	}
	return true
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func spkiOf(k ed25519.PrivateKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		panic(err)
	}
	return der
}

func pemOf(k ed25519.PrivateKey) string { return protocol.PublicKeyPEM(spkiOf(k)) }
