package mender_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/mender"
	"gatehouse/simulate"
)

// rekeyCase is where deviceauth stands when a re-key of a provisioned
// gateway runs: the old key's set and what the reflashed gateway's client
// did with the new key.
type rekeyCase struct {
	before func(t *testing.T, m *simulate.Mender, old, fresh ed25519.PrivateKey)
	// status is the new key's set afterwards, the only one left; sameID
	// whether the device keeps its id; "" status: the step fails with fails.
	status string
	sameID bool
	fails  string
}

// The moves come from deviceauth's devauth.go (PreauthorizeDevice with
// force, AcceptDeviceAuth rejecting the other accepted set, DeleteAuthSet
// removing the device with a preauthorized set) and the order seen on real
// gateways (external-apis.md §0): the client asks with its key from boot.
var rekeyCases = map[string]rekeyCase{
	"NewKeyAsked": {
		before: func(t *testing.T, m *simulate.Mender, old, fresh ed25519.PrivateKey) {
			authenticate(t, m, old)
			asks(t, m, fresh)
		},
		status: gatehouse.MenderAccepted, sameID: true,
	},
	"NewKeyNotAskedYet": {
		before: func(t *testing.T, m *simulate.Mender, old, _ ed25519.PrivateKey) { authenticate(t, m, old) },
		status: gatehouse.MenderPreauthorized, sameID: true,
	},
	"OldKeyNeverUsed": {
		before: func(*testing.T, *simulate.Mender, ed25519.PrivateKey, ed25519.PrivateKey) {},
		status: gatehouse.MenderPreauthorized,
	},
	"NewKeyRejected": {
		before: func(t *testing.T, m *simulate.Mender, old, fresh ed25519.PrivateKey) {
			authenticate(t, m, old)
			setStatus(t, m, asks(t, m, fresh), gatehouse.MenderRejected)
		},
		fails: "rejected in Mender",
	},
}

// TestRekey moves a provisioned gateway's Mender device onto its new key in
// every state deviceauth may hold, and again after each of its calls lost
// its answer: one device, holding only the new key, tagged with the name.
func TestRekey(t *testing.T) {
	for name, tc := range rekeyCases {
		for lost := 0; lost <= 3; lost++ {
			t.Run(fmt.Sprintf("%s/lost%d", name, lost), func(t *testing.T) {
				m := simulate.NewMender()
				m.SetInventoryDelay(0)
				old, fresh := newKey(t), newKey(t)
				b := mender.NewBackend(m)
				prev, recorded := stepInput(spkiOf(old), "gw-state")
				if _, err := b.Provision(context.Background(), prev); err != nil {
					t.Fatal(err)
				}
				tc.before(t, m, old, fresh)
				oldID := recorded[gatehouse.OutMenderDeviceID]
				in, now := stepInput(spkiOf(fresh), "gw-state")
				in.Recorded = maps.Clone(recorded)
				m.LoseNext(lost)
				res, err := rekeyRetrying(b, in, now, lost)
				if tc.fails != "" {
					if err == nil || !strings.Contains(err.Error(), tc.fails) {
						t.Fatalf("err = %v, want one containing %q", err, tc.fails)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				id := res.Output[gatehouse.OutMenderDeviceID]
				dev, _ := m.Device(id)
				if m.Len() != 1 || len(dev.AuthSets) != 1 || setOf(dev, spkiOf(fresh)) == nil || dev.AuthSets[0].Status != tc.status {
					t.Fatalf("%d devices, device %+v; want one holding only the new key, %s", m.Len(), dev, tc.status)
				}
				if (id == oldID) != tc.sameID {
					t.Errorf("device id %s, was %s; same id wanted: %v", id, oldID, tc.sameID)
				}
				if m.TagsOf(id)["name"] != "gw-state" {
					t.Errorf("tags = %v", m.TagsOf(id))
				}
			})
		}
	}
}

// authenticate is the provisioned gateway's client asking with its
// preauthorized key: deviceauth accepts the set and answers a token.
func authenticate(t *testing.T, m *simulate.Mender, key ed25519.PrivateKey) {
	t.Helper()
	identity, _ := json.Marshal(map[string]string{"mac": stepMAC})
	body, _ := json.Marshal(map[string]string{"id_data": string(identity), "pubkey": pemOf(key), "tenant_token": ""})
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, body))
	if _, err := m.AuthRequest(context.Background(), body, sig); err != nil {
		t.Fatalf("the provisioned gateway got no token: %v", err)
	}
}

// rekeyRetrying reruns Rekey as the job queue would after lost answers,
// with what earlier attempts recorded.
func rekeyRetrying(b *mender.Backend, in *gatehouse.StepInput, recorded map[string]string, lost int) (*gatehouse.StepResult, error) {
	for try := 0; ; try++ {
		res, err := b.Rekey(context.Background(), in)
		if err == nil || !errors.Is(err, simulate.ErrLostResponse) || try >= lost {
			return res, err
		}
		maps.Copy(in.Recorded, recorded)
	}
}
