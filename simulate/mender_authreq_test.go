package simulate_test

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/simulate"
)

// TestMenderAuthRequestFlow follows devauth.go SubmitAuthRequest and
// processAuthRequest: the first request of an unknown identity records a
// pending device with a pending set and is refused (401), as is every
// repeat; once the set is accepted the request gets a device JWT.
func TestMenderAuthRequestFlow(t *testing.T) {
	for _, kind := range keyKinds {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			m := simulate.NewMender()
			k := deviceKey(t, kind)
			body, sig := authRequest(t, k, `{"mac":"02:00:00:00:00:01"}`)
			for range 2 {
				if _, err := m.AuthRequest(ctx, body, sig); statusOf(err) != http.StatusUnauthorized {
					t.Fatalf("pending: err = %v, want 401", err)
				}
			}
			devs := m.Devices()
			if len(devs) != 1 || devs[0].Status != "pending" || len(devs[0].AuthSets) != 1 || devs[0].AuthSets[0].Status != "pending" {
				t.Fatalf("devices = %+v, want one pending device with one pending set", devs)
			}
			d := devs[0]
			if d.AuthSets[0].PublicKey != signerPEM(t, k) || d.IdentityData["mac"] != "02:00:00:00:00:01" {
				t.Errorf("device %+v does not hold the request's key and identity", d)
			}
			if err := m.SetAuthSetStatus(ctx, d.ID, d.AuthSets[0].ID, "accepted"); err != nil {
				t.Fatal(err)
			}
			token, err := m.AuthRequest(ctx, body, sig)
			if err != nil || !m.ValidDeviceToken(d.ID, token) || m.ValidDeviceToken("other", token) {
				t.Fatalf("accepted: token %q, %v; want a JWT valid for %s only", token, err, d.ID)
			}
			if m.ValidDeviceToken(d.ID, token[:len(token)-2]+"xx") {
				t.Error("a tampered JWT passes")
			}
		})
	}
}

// TestMenderAuthRequestIdentityNormalised: AuthReq.Validate re-marshals
// id_data with sorted keys (utils.JsonSort) before hashing it, so key
// order and spacing do not make a new device, and a preauthorized identity
// matches the client's string.
func TestMenderAuthRequestIdentityNormalised(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	k := deviceKey(t, "ed25519")
	dev, err := m.Preauthorize(ctx, map[string]string{"sn": "7", "mac": "02:00:00:00:00:01"}, signerPEM(t, k), false)
	if err != nil {
		t.Fatal(err)
	}
	body, sig := authRequest(t, k, `{ "sn": "7",  "mac":"02:00:00:00:00:01" }`)
	if token, err := m.AuthRequest(ctx, body, sig); err != nil || !m.ValidDeviceToken(dev.ID, token) {
		t.Fatalf("reordered identity: %v, want the preauthorized device's token", err)
	}
	if m.Len() != 1 {
		t.Errorf("%d devices, want 1", m.Len())
	}
}

// TestMenderAuthRequestPreauthorized: processPreAuthRequest finds the
// preauthorized set for identity and key, handlePreAuthDevice accepts it
// (and the device): the very first request gets a token.
func TestMenderAuthRequestPreauthorized(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	k := deviceKey(t, "ecdsa")
	dev, err := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, signerPEM(t, k), false)
	if err != nil {
		t.Fatal(err)
	}
	body, sig := authRequest(t, k, `{"mac":"02:00:00:00:00:01"}`)
	token, err := m.AuthRequest(ctx, body, sig)
	if err != nil || !m.ValidDeviceToken(dev.ID, token) {
		t.Fatalf("first request of a preauthorized device: %v, want a token", err)
	}
	if got, _ := m.Device(dev.ID); got.Status != "accepted" || got.AuthSets[0].Status != "accepted" {
		t.Errorf("device %+v, want it and its set accepted", got)
	}
}

// TestMenderAuthRequestNewKey: a known identity with a new key adds a
// pending set (processAuthRequest AddAuthSet) and is refused; a rejected
// set stays rejected and refused.
func TestMenderAuthRequestNewKey(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	id, first := pendingDevice(t, m, deviceKey(t, "ed25519"), "02:00:00:00:00:01")
	if err := m.SetAuthSetStatus(ctx, id, first, "accepted"); err != nil {
		t.Fatal(err)
	}
	k := deviceKey(t, "rsa")
	body, sig := authRequest(t, k, `{"mac":"02:00:00:00:00:01"}`)
	wantStatus(t, "new key", errOnly(m.AuthRequest(ctx, body, sig)), 401)
	d, _ := m.Device(id)
	if len(d.AuthSets) != 2 || d.AuthSets[1].Status != "pending" || d.Status != "accepted" {
		t.Fatalf("device %+v, want the accepted device with a second, pending set", d)
	}
	if err := m.SetAuthSetStatus(ctx, id, d.AuthSets[1].ID, "rejected"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "rejected key", errOnly(m.AuthRequest(ctx, body, sig)), 401)
	if got := authSetStatus(m, id, d.AuthSets[1].ID); got != "rejected" {
		t.Errorf("rejected set is now %q, want it to stay rejected", got)
	}
}

func errOnly(_ string, err error) error { return err }

// TestMenderAuthRequestRefusals: SubmitAuthRequestHandler answers 400 for
// an undecodable body, AuthReq.Validate failures and a missing
// X-MEN-Signature, before anything is recorded.
func TestMenderAuthRequestRefusals(t *testing.T) {
	k := deviceKey(t, "ed25519")
	good, sig := authRequest(t, k, `{"mac":"02:00:00:00:00:01"}`)
	tests := map[string]struct {
		body []byte
		sig  string
	}{
		"NotJSON":        {[]byte("{"), sig},
		"NoIDData":       {[]byte(`{"pubkey":` + quote(signerPEM(t, k)) + `}`), sig},
		"IDDataObject":   {[]byte(`{"id_data":{"mac":"x"},"pubkey":` + quote(signerPEM(t, k)) + `}`), sig},
		"IDDataNotJSON":  {[]byte(`{"id_data":"mac=x","pubkey":` + quote(signerPEM(t, k)) + `}`), sig},
		"NoPubkey":       {[]byte(`{"id_data":"{\"mac\":\"x\"}"}`), sig},
		"BadPubkey":      {[]byte(`{"id_data":"{\"mac\":\"x\"}","pubkey":"nope"}`), sig},
		"NoSignature":    {good, ""},
		"NonStringValue": {[]byte(`{"id_data":"{\"mac\":1}","pubkey":` + quote(signerPEM(t, k)) + `}`), sig},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m := simulate.NewMender()
			wantStatus(t, name, errOnly(m.AuthRequest(context.Background(), tt.body, tt.sig)), 400)
			if m.Len() != 0 {
				t.Errorf("a refused request recorded %d devices", m.Len())
			}
		})
	}
}

// TestMenderAuthRequestEmptyIdentity: AuthReq.Validate and parseIdData
// take "{}" (preauthorize, by contrast, requires identity_data), so an
// identity script that prints nothing still makes a device.
func TestMenderAuthRequestEmptyIdentity(t *testing.T) {
	m := simulate.NewMender()
	body, sig := authRequest(t, deviceKey(t, "ed25519"), `{}`)
	wantStatus(t, "empty identity", errOnly(m.AuthRequest(context.Background(), body, sig)), 401)
	if m.Len() != 1 || m.Devices()[0].Status != "pending" {
		t.Errorf("devices %+v, want one pending device", m.Devices())
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, "\n", `\n`) + `"` }

// TestMenderAuthRequestSignature: SubmitAuthRequestHandler verifies the
// signature only after SubmitAuthRequest succeeded, so a bad signature is
// a 401 ("signature verification failed") for an accepted device, and a
// request that would be refused anyway is recorded first, signature or not:
// a forged request still makes a pending device, and still turns a
// preauthorized set accepted (without getting the token).
func TestMenderAuthRequestSignature(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	k, other := deviceKey(t, "ed25519"), deviceKey(t, "ed25519")
	body, _ := authRequest(t, k, `{"mac":"02:00:00:00:00:01"}`)
	forged := signBody(t, other, body)

	wantStatus(t, "forged, unknown device", errOnly(m.AuthRequest(ctx, body, forged)), 401)
	if m.Len() != 1 || m.Devices()[0].Status != "pending" {
		t.Errorf("devices %+v, want the forged request recorded as a pending device", m.Devices())
	}

	dev, err := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:02"}, signerPEM(t, k), false)
	if err != nil {
		t.Fatal(err)
	}
	body2, sig2 := authRequest(t, k, `{"mac":"02:00:00:00:00:02"}`)
	_, err = m.AuthRequest(ctx, body2, signBody(t, other, body2))
	if statusOf(err) != 401 || !strings.Contains(err.Error(), "signature verification failed") {
		t.Errorf("forged, preauthorized: %v, want 401 signature verification failed", err)
	}
	if m.Status(dev.ID) != "accepted" {
		t.Errorf("device %q, want accepted by the forged request (deviceauth checks the signature last)", m.Status(dev.ID))
	}
	for name, s := range map[string]string{"NotBase64": "%%%", "OtherBody": signBody(t, k, body)} {
		wantStatus(t, name, errOnly(m.AuthRequest(ctx, body2, s)), 401)
	}
	if token, err := m.AuthRequest(ctx, body2, sig2); err != nil || !m.ValidDeviceToken(dev.ID, token) {
		t.Errorf("signed: %v, want a token", err)
	}
}

// TestMenderDeviceTokenLifetime: VerifyToken refuses an expired JWT
// (deviceauth's default ExpirationTime is a week) and one whose auth set
// is no longer accepted (setAuthSetStatus deletes the device's tokens).
func TestMenderDeviceTokenLifetime(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	c := newClock(m)
	k := deviceKey(t, "ed25519")
	id, aid := pendingDevice(t, m, k, "02:00:00:00:00:01")
	if err := m.SetAuthSetStatus(ctx, id, aid, "accepted"); err != nil {
		t.Fatal(err)
	}
	body, sig := authRequest(t, k, `{"mac":"02:00:00:00:00:01"}`)
	token, err := m.AuthRequest(ctx, body, sig)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(7*24*time.Hour - time.Second)
	if !m.ValidDeviceToken(id, token) {
		t.Error("token invalid before a week is up")
	}
	c.Add(time.Second)
	if m.ValidDeviceToken(id, token) {
		t.Error("token valid after a week")
	}
	if token, err = m.AuthRequest(ctx, body, sig); err != nil {
		t.Fatal(err)
	}
	if err := m.SetAuthSetStatus(ctx, id, aid, "rejected"); err != nil {
		t.Fatal(err)
	}
	if m.ValidDeviceToken(id, token) {
		t.Error("token still valid after its auth set was rejected")
	}
	if err := m.SetAuthSetStatus(ctx, id, aid, "accepted"); err != nil || m.ValidDeviceToken(id, token) {
		t.Errorf("re-accepting (%v) must not revive a deleted token", err)
	}
}

// TestMenderServerAuthRequests: the device API needs no management
// credentials, checks the Content-Type (contenttype.CheckJSON) and answers
// the JWT as application/jwt.
func TestMenderServerAuthRequests(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT})
	k := deviceKey(t, "rsa")
	body, sig := authRequest(t, k, `{"mac":"02:00:00:00:00:01"}`)
	call := menderCall{method: "POST", path: simulate.MenderAuthRequestsPath, body: string(body), header: map[string]string{"X-MEN-Signature": sig}}

	call.header["Content-Type"] = "text/plain"
	if status, _, _ := call.do(t, s); status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d, want 415", status)
	}
	call.header["Content-Type"] = "application/json"
	status, _, out := call.do(t, s)
	if status != http.StatusUnauthorized || menderErrorBody(t, out) != "dev auth: unauthorized" {
		t.Fatalf("pending: %d %s, want 401 dev auth: unauthorized", status, out)
	}
	d := s.State.Devices()[0]
	if err := s.State.SetAuthSetStatus(context.Background(), d.ID, d.AuthSets[0].ID, "accepted"); err != nil {
		t.Fatal(err)
	}
	status, h, out := call.do(t, s)
	if status != http.StatusOK || h.Get("Content-Type") != "application/jwt" || !s.State.ValidDeviceToken(d.ID, string(out)) {
		t.Errorf("accepted: %d %q %s, want 200 application/jwt with a valid token", status, h.Get("Content-Type"), out)
	}
	delete(call.header, "X-MEN-Signature")
	if status, _, out := call.do(t, s); status != http.StatusBadRequest {
		t.Errorf("no signature: %d %s, want 400", status, out)
	}
}

// TestMenderAuthRequestsConcurrent: gateways asking at once while an
// operator accepts them and tags them; one device per identity.
func TestMenderAuthRequestsConcurrent(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	const gateways = 8
	keys := make([]crypto.Signer, gateways)
	for i := range keys {
		keys[i] = deviceKey(t, "ed25519")
	}
	var wg sync.WaitGroup
	for i := range gateways * 4 {
		wg.Go(func() {
			mac := fmt.Sprintf("02:00:00:00:00:%02x", i%gateways)
			body, sig := authRequest(t, keys[i%gateways], `{"mac":"`+mac+`"}`)
			if _, err := m.AuthRequest(ctx, body, sig); err != nil && statusOf(err) != 401 {
				t.Error(err)
			}
			for _, d := range m.Devices() {
				for _, a := range d.AuthSets {
					_ = m.SetAuthSetStatus(ctx, d.ID, a.ID, "accepted")
				}
				_ = m.SetTag(ctx, d.ID, "name", mac)
			}
			m.IndexNow()
		})
	}
	wg.Wait()
	if m.Len() != gateways {
		t.Fatalf("Len() = %d, want %d", m.Len(), gateways)
	}
	for _, d := range m.Devices() {
		if len(d.AuthSets) != 1 {
			t.Errorf("device %s has %d auth sets, want 1", d.ID, len(d.AuthSets))
		}
	}
}
