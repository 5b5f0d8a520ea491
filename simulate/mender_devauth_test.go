package simulate_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"gatehouse"
	"gatehouse/simulate"
)

// authSetStatus returns one auth set's status, "" if it is gone.
func authSetStatus(m *simulate.Mender, deviceID, authSetID string) string {
	d, _ := m.Device(deviceID)
	for _, a := range d.AuthSets {
		if a.ID == authSetID {
			return a.Status
		}
	}
	return ""
}

// TestMenderAuthSetTransitions follows deviceauth's handler and app:
// api_devauth.go UpdateDeviceStatusHandler/statusValidate take only
// accepted, rejected and pending (400 otherwise, preauthorized included,
// although the spec's Status enum lists it); devauth.go AcceptDeviceAuth
// accepts only a pending or rejected set (an accepted one is a no-op),
// RejectDeviceAuth rejects only a pending or accepted one, ResetDeviceAuth
// refuses a preauthorized one; unknown sets are 404.
func TestMenderAuthSetTransitions(t *testing.T) {
	tests := map[string]struct {
		from, to   string
		want       int // 0 for success
		wantDevice string
	}{
		"PendingToAccepted":        {from: "pending", to: "accepted", wantDevice: "accepted"},
		"PendingToRejected":        {from: "pending", to: "rejected", wantDevice: "rejected"},
		"RejectedToAccepted":       {from: "rejected", to: "accepted", wantDevice: "accepted"},
		"AcceptedToRejected":       {from: "accepted", to: "rejected", wantDevice: "rejected"},
		"AcceptedToPending":        {from: "accepted", to: "pending", wantDevice: "pending"},
		"AcceptedAgain":            {from: "accepted", to: "accepted", wantDevice: "accepted"},
		"PendingAgain":             {from: "pending", to: "pending", wantDevice: "pending"},
		"PreauthorizedToAccepted":  {from: "preauthorized", to: "accepted", want: 400, wantDevice: "preauthorized"},
		"PreauthorizedToRejected":  {from: "preauthorized", to: "rejected", want: 400, wantDevice: "preauthorized"},
		"PreauthorizedToPending":   {from: "preauthorized", to: "pending", want: 400, wantDevice: "preauthorized"},
		"ToPreauthorized":          {from: "pending", to: "preauthorized", want: 400, wantDevice: "pending"},
		"RejectedToRejected":       {from: "rejected", to: "rejected", want: 400, wantDevice: "rejected"},
		"NotAStatus":               {from: "pending", to: "sleeping", want: 400, wantDevice: "pending"},
		"RejectedToPendingAllowed": {from: "rejected", to: "pending", wantDevice: "pending"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			m := simulate.NewMender()
			id, aid := deviceWithSet(t, m, tt.from)
			wantStatus(t, "SetAuthSetStatus", m.SetAuthSetStatus(ctx, id, aid, tt.to), tt.want)
			if got := m.Status(id); got != tt.wantDevice {
				t.Errorf("device status = %q, want %q", got, tt.wantDevice)
			}
		})
	}
}

// deviceWithSet makes a device whose one auth set has status.
func deviceWithSet(t *testing.T, m *simulate.Mender, status string) (id, aid string) {
	t.Helper()
	ctx := context.Background()
	if status == simulate.StatusPreauthorized {
		d, err := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, publicKeyPEM(t, "ed25519"), false)
		if err != nil {
			t.Fatal(err)
		}
		return d.ID, d.AuthSets[0].ID
	}
	id, aid = pendingDevice(t, m, deviceKey(t, "ed25519"), "02:00:00:00:00:01")
	if status == "accepted" || status == "rejected" {
		if err := m.SetAuthSetStatus(ctx, id, aid, status); err != nil {
			t.Fatal(err)
		}
	}
	return id, aid
}

// TestMenderAuthSetNotFound: the set is looked up by its id alone
// (GetAuthSetById); a set of another device is a 400 mismatch from
// setAuthSetStatus, and accepting for an unknown device id a 404 from
// GetDeviceById.
func TestMenderAuthSetNotFound(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	id, aid := pendingDevice(t, m, deviceKey(t, "ed25519"), "02:00:00:00:00:01")
	other, _ := pendingDevice(t, m, deviceKey(t, "ed25519"), "02:00:00:00:00:02")

	err := m.SetAuthSetStatus(ctx, id, "no-such-set", "accepted")
	if !errors.Is(err, gatehouse.ErrBackendNotFound) || statusOf(err) != 404 {
		t.Errorf("unknown set: err = %v, want a 404 wrapping ErrBackendNotFound", err)
	}
	wantStatus(t, "accept for an unknown device", m.SetAuthSetStatus(ctx, "no-such-device", aid, "accepted"), 404)
	wantStatus(t, "accept for another device", m.SetAuthSetStatus(ctx, other, aid, "accepted"), 400)
	wantStatus(t, "reject for another device", m.SetAuthSetStatus(ctx, other, aid, "rejected"), 400)
	if m.Status(id) != "pending" || m.Status(other) != "pending" {
		t.Errorf("statuses %q, %q after refused calls, want both pending", m.Status(id), m.Status(other))
	}
}

// TestMenderAcceptRejectsAcceptedOnly: setAuthSetStatus rejects the
// device's other accepted sets first (store RejectAuthSetsForDevice, whose
// filter is status "accepted": a preauthorized set is left alone), and
// the old set's tokens go with it (DeleteTokenByDevId).
func TestMenderAcceptRejectsAcceptedOnly(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	oldKey, newKey := deviceKey(t, "ed25519"), deviceKey(t, "ecdsa")
	id, oldSet := pendingDevice(t, m, oldKey, "02:00:00:00:00:01")
	if err := m.SetAuthSetStatus(ctx, id, oldSet, "accepted"); err != nil {
		t.Fatal(err)
	}
	body, sig := authRequest(t, oldKey, `{"mac":"02:00:00:00:00:01"}`)
	oldToken, err := m.AuthRequest(ctx, body, sig)
	if err != nil {
		t.Fatal(err)
	}
	_, newSet := pendingDevice(t, m, newKey, "02:00:00:00:00:01")
	forced, err := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, publicKeyPEM(t, "rsa"), true)
	if err != nil {
		t.Fatal(err)
	}
	preSet := forced.AuthSets[2].ID

	if err := m.SetAuthSetStatus(ctx, id, newSet, "accepted"); err != nil {
		t.Fatal(err)
	}
	for set, want := range map[string]string{oldSet: "rejected", newSet: "accepted", preSet: simulate.StatusPreauthorized} {
		if got := authSetStatus(m, id, set); got != want {
			t.Errorf("auth set %s: %q, want %q", set, got, want)
		}
	}
	if m.Status(id) != "accepted" || m.ValidDeviceToken(id, oldToken) {
		t.Errorf("device %q, old token valid %v; want accepted and the old key's token revoked", m.Status(id), m.ValidDeviceToken(id, oldToken))
	}
}

// TestMenderDeviceLimit: AcceptDeviceAuth checks canAcceptDevice and the
// handler answers ErrMaxDeviceCountReached with 422.
func TestMenderDeviceLimit(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	m.SetDeviceLimit(1)
	a, aSet := pendingDevice(t, m, deviceKey(t, "ed25519"), "02:00:00:00:00:01")
	b, bSet := pendingDevice(t, m, deviceKey(t, "ed25519"), "02:00:00:00:00:02")
	wantStatus(t, "first accept", m.SetAuthSetStatus(ctx, a, aSet, "accepted"), 0)
	wantStatus(t, "accept past the limit", m.SetAuthSetStatus(ctx, b, bSet, "accepted"), http.StatusUnprocessableEntity)
}

// TestMenderPreauthorizeForce follows PreauthorizeDevice with force for a
// known identity: store UpsertAuthSetStatus keys on identity and key, so
// a key the device already presented keeps its auth set (and id) and turns
// preauthorized, a new key gets a new preauthorized set; the device's own
// status is not updated on that path. The device's next auth request with
// the key is then accepted at once (processPreAuthRequest).
func TestMenderPreauthorizeForce(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	k := deviceKey(t, "rsa")
	id, aid := pendingDevice(t, m, k, "02:00:00:00:00:01")
	identity := map[string]string{"mac": "02:00:00:00:00:01"}

	if _, err := m.Preauthorize(ctx, identity, signerPEM(t, k), false); !errors.Is(err, gatehouse.ErrBackendExists) {
		t.Fatalf("without force: err = %v, want ErrBackendExists", err)
	}
	dev, err := m.Preauthorize(ctx, identity, signerPEM(t, k), true)
	if err != nil {
		t.Fatal(err)
	}
	if dev.ID != id || len(dev.AuthSets) != 1 || dev.AuthSets[0].ID != aid || dev.AuthSets[0].Status != simulate.StatusPreauthorized {
		t.Errorf("force with the pending key: %+v, want set %s of device %s preauthorized", dev, aid, id)
	}
	if dev.Status != "pending" {
		t.Errorf("device status = %q, want it left pending (force does not update it)", dev.Status)
	}
	body, sig := authRequest(t, k, `{"mac":"02:00:00:00:00:01"}`)
	if token, err := m.AuthRequest(ctx, body, sig); err != nil || !m.ValidDeviceToken(id, token) {
		t.Fatalf("auth request after force: %v, want a valid token", err)
	}
	if m.Status(id) != "accepted" {
		t.Errorf("device %q after the auth request, want accepted", m.Status(id))
	}
	dev, err = m.Preauthorize(ctx, identity, publicKeyPEM(t, "ed25519"), true)
	if err != nil || len(dev.AuthSets) != 2 || dev.AuthSets[1].Status != simulate.StatusPreauthorized || dev.Status != "accepted" {
		t.Errorf("force with a new key: %+v, %v; want a second, preauthorized set on the accepted device", dev, err)
	}
}

// TestMenderTwoPreauthorizedSets: force can leave two preauthorized sets;
// the store's getDeviceStatus calls that broken, and updateDeviceStatus
// fails the next call that needs the device status with a 500 (after the
// auth set change was written).
func TestMenderTwoPreauthorizedSets(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	id, aid := pendingDevice(t, m, deviceKey(t, "ed25519"), "02:00:00:00:00:01")
	for range 2 {
		if _, err := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, publicKeyPEM(t, "ed25519"), true); err != nil {
			t.Fatal(err)
		}
	}
	wantStatus(t, "reject the pending set", m.SetAuthSetStatus(ctx, id, aid, "rejected"), http.StatusInternalServerError)
	if got := authSetStatus(m, id, aid); got != "rejected" {
		t.Errorf("auth set %q, want rejected all the same", got)
	}
}

// TestMenderDeleteAuthSet follows devauth.go DeleteAuthSet: removing a
// preauthorized set deletes the device, whatever else it holds (the code
// looks only at the removed set; the spec speaks of "only one auth set");
// removing an accepted set revokes the tokens; the status is derived
// again, noauth without sets. Unknown or foreign sets are 404
// (DeleteAuthSetForDevice filters on both ids).
func TestMenderDeleteAuthSet(t *testing.T) {
	ctx := context.Background()
	t.Run("OnlyPreauthorized", func(t *testing.T) {
		m := simulate.NewMender()
		id, aid := deviceWithSet(t, m, simulate.StatusPreauthorized)
		wantStatus(t, "delete", m.DeleteAuthSet(ctx, id, aid), 0)
		if _, ok := m.Device(id); ok {
			t.Error("the device outlived its only, preauthorized, auth set")
		}
		if _, err := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, publicKeyPEM(t, "ed25519"), false); err != nil {
			t.Errorf("the identity is not free again: %v", err)
		}
	})
	t.Run("PreauthorizedBesidePending", func(t *testing.T) {
		m := simulate.NewMender()
		id, _ := pendingDevice(t, m, deviceKey(t, "ed25519"), "02:00:00:00:00:01")
		dev, err := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, publicKeyPEM(t, "ed25519"), true)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, "delete", m.DeleteAuthSet(ctx, id, dev.AuthSets[1].ID), 0)
		if _, ok := m.Device(id); ok {
			t.Error("removing a preauthorized set kept the device; deviceauth deletes it")
		}
	})
	t.Run("LastAccepted", func(t *testing.T) {
		m := simulate.NewMender()
		id, aid := deviceWithSet(t, m, "pending")
		wantStatus(t, "accept", m.SetAuthSetStatus(ctx, id, aid, "accepted"), 0)
		wantStatus(t, "delete", m.DeleteAuthSet(ctx, id, aid), 0)
		if d, ok := m.Device(id); !ok || d.Status != "noauth" || len(d.AuthSets) != 0 {
			t.Errorf("device = %+v, %v; want it kept, noauth, without sets", d, ok)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		m := simulate.NewMender()
		id, aid := deviceWithSet(t, m, "pending")
		other, _ := pendingDevice(t, m, deviceKey(t, "ed25519"), "02:00:00:00:00:02")
		err := m.DeleteAuthSet(ctx, id, "no-such-set")
		if !errors.Is(err, gatehouse.ErrBackendNotFound) || statusOf(err) != 404 {
			t.Errorf("unknown set: %v, want a 404 wrapping ErrBackendNotFound", err)
		}
		wantStatus(t, "another device's set", m.DeleteAuthSet(ctx, other, aid), 404)
		if authSetStatus(m, id, aid) != "pending" {
			t.Error("a refused delete removed the set")
		}
	})
}

// TestMenderDevauthLostResponses: the new state-changing calls apply
// their change and then lose the answer, like the others.
func TestMenderDevauthLostResponses(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	k := deviceKey(t, "ed25519")
	id, aid := pendingDevice(t, m, k, "02:00:00:00:00:01")

	m.LoseNext(1)
	if err := m.SetAuthSetStatus(ctx, id, aid, "accepted"); !errors.Is(err, simulate.ErrLostResponse) || m.Status(id) != "accepted" {
		t.Errorf("SetAuthSetStatus: %v, device %q; want a lost answer after accepting", err, m.Status(id))
	}
	body, sig := authRequest(t, k, `{"mac":"02:00:00:00:00:01"}`)
	m.LoseNext(1)
	if _, err := m.AuthRequest(ctx, body, sig); !errors.Is(err, simulate.ErrLostResponse) {
		t.Errorf("AuthRequest: %v, want a lost answer", err)
	}
	m.LoseNext(1)
	if err := m.DeleteAuthSet(ctx, id, aid); !errors.Is(err, simulate.ErrLostResponse) || authSetStatus(m, id, aid) != "" {
		t.Errorf("DeleteAuthSet: %v, want the set gone and the answer lost", err)
	}
	m.FailNext(1, nil)
	if _, err := m.AuthRequest(ctx, body, sig); !errors.Is(err, simulate.ErrTransient) || m.Status(id) != "noauth" {
		t.Errorf("failed AuthRequest: %v, device %q; want a transient error that changed nothing", err, m.Status(id))
	}
}
