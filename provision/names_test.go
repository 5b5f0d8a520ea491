package provision_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
)

func TestApproveRefusesNameTakenInBackends(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	// Leave traces of other gateways in every backend, as another tool might.
	other := newGateway(t)
	dev, err := tb.mender.Preauthorize(ctx, map[string]string{"mac": "02:99:00:00:00:01"}, protocol.PublicKeyPEM(other.sig.PublicKey), false)
	if err != nil {
		t.Fatal(err)
	}
	tb.mender.IndexNow() // inventory has caught up with that device
	tb.mender.SetTag(ctx, dev.ID, "name", "in-mender")
	tb.dps.CreateEnrollment(ctx, gatehouse.Enrollment{RegistrationID: "in-dps", DeviceID: "in-dps",
		PrimaryKey: "MDEyMzQ1Njc4OWFiY2RlZg==", SecondaryKey: "MDEyMzQ1Njc4OWFiY2RlZg=="})
	tb.hub.AddDevice("hub-b.azure-devices.net", gatehouse.HubDevice{DeviceID: "in-hub"})
	tb.hub.AddDevice("hub-a.azure-devices.net", gatehouse.HubDevice{DeviceID: "in-dps"})

	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	cases := map[string][]string{
		"in-mender": {"mender"},
		"in-dps":    {"dps", "iothub hub-a.azure-devices.net"},
		"in-hub":    {"iothub hub-b.azure-devices.net"},
	}
	for name, where := range cases {
		_, err := tb.svc.Approve(ctx, "op", id, provision.Approval{Name: name})
		wantCode(t, err, gatehouse.ECONFLICT)
		for _, w := range where {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("approving as %s: %q does not name %s", name, err, w)
			}
		}
	}
	d, _ := tb.svc.Device(ctx, id)
	if d.State != gatehouse.StatePending || d.Name != "" || len(d.Steps) != 0 {
		t.Fatalf("refused approvals changed the device: %+v", d)
	}
	if tb.mender.Len() != 1 || tb.dps.Len() != 1 || tb.pki.Len() != 0 {
		t.Fatalf("refused approvals created backend objects: mender %d dps %d vault %d", tb.mender.Len(), tb.dps.Len(), tb.pki.Len())
	}
}

func TestApproveRefusedWhileBackendDown(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	tb.mender.FailNext(1, nil)
	_, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: "gw-01"})
	wantCode(t, err, gatehouse.EUNAVAILABLE)
	if !strings.Contains(err.Error(), "mender") {
		t.Fatalf("error does not name the backend: %v", err)
	}
	d, _ := tb.svc.Device(context.Background(), id)
	if d.State != gatehouse.StatePending {
		t.Fatalf("device is %s after a refused approval", d.State)
	}
	if _, err := tb.svc.Approve(context.Background(), "op", id, provision.Approval{Name: "gw-01"}); err != nil {
		t.Fatalf("approval once the backend is back: %v", err)
	}
}

func TestSignModeKeepsKeyOnGateway(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	cfg := fastConfig(tb.backends())
	cfg.Backends.PKISign = true
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "sign.db")), cfg)
	g := newGateway(t)
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, certKey)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	st, err := tb.svc.Enroll(context.Background(), g.sig, protocol.EnrollRequest{MAC: g.mac, SealKey: g.sealKey(t), CSR: csr}, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.svc.Approve(context.Background(), "op", st.DeviceID, provision.Approval{Name: "gw-sign"}); err != nil {
		t.Fatal(err)
	}
	b := tb.waitFor(t, g, gatehouse.StateProvisioned).Bundle
	if _, ok := b.Sealed[protocol.FieldPrivateKey]; ok {
		t.Fatal("sign mode sent a private key")
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(certKey)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if _, err := tls.X509KeyPair([]byte(b.Certificate), keyPEM); err != nil {
		t.Fatalf("certificate is not for the CSR's key: %v", err)
	}
}

func TestEnrollRejectsBadCSR(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	g := newGateway(t)
	for _, csr := range []string{"junk", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"} {
		_, err := tb.svc.Enroll(context.Background(), g.sig, protocol.EnrollRequest{MAC: g.mac, SealKey: g.sealKey(t), CSR: csr}, "x")
		wantCode(t, err, gatehouse.EINVALID)
	}
}

// TestNameConflictNamesTheOtherGateway: a name another gateway holds is
// refused naming that gateway by MAC and id, in the message (for the CLI)
// and in the error's details (for the page's link), on approval and on a
// rename alike.
func TestNameConflictNamesTheOtherGateway(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	ga, gb := newGateway(t), newGateway(t)
	ida, idb := tb.enroll(t, ga).DeviceID, tb.enroll(t, gb).DeviceID
	if _, err := tb.svc.Approve(ctx, "op", ida, provision.Approval{Name: "gw-a"}); err != nil {
		t.Fatal(err)
	}
	want := gatehouse.Conflict{ID: ida, Name: "gw-a", MAC: ga.mac}
	check := func(what string, err error) {
		t.Helper()
		wantCode(t, err, gatehouse.ECONFLICT)
		if c := gatehouse.ErrorConflict(err); c == nil || *c != want {
			t.Errorf("%s: conflict = %+v, want %+v", what, c, want)
		}
		msg := gatehouse.ErrorMessage(err)
		for _, w := range []string{`"` + want.Name + `"`, want.MAC, want.ID} {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not say %s", what, msg, w)
			}
		}
	}
	_, err := tb.svc.Approve(ctx, "op", idb, provision.Approval{Name: "gw-a"})
	check("approve", err)

	// A rename needs backends that can rename: Mender alone.
	tb.svc = startService(t, openDB(t, filepath.Join(t.TempDir(), "m.db")), fastConfig(apis{Mender: tb.mender}))
	gc, idc := tb.provisionOne(t, "gw-c")
	_, idd := tb.provisionOne(t, "gw-d")
	want = gatehouse.Conflict{ID: idc, Name: "gw-c", MAC: gc.mac}
	name := "gw-c"
	_, err = tb.svc.Update(ctx, "op", idd, provision.Edit{Name: &name})
	check("rename", err)
}

// TestApproveRefusesLongName: a name over 63 characters is refused as too
// long and approves nothing; it is never cut to fit.
func TestApproveRefusesLongName(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	id := tb.enroll(t, newGateway(t)).DeviceID
	long := strings.Repeat("a", 70)
	_, err := tb.svc.Approve(ctx, "op", id, provision.Approval{Name: long})
	wantCode(t, err, gatehouse.EINVALID)
	if msg := gatehouse.ErrorMessage(err); !strings.Contains(msg, "70 characters long") || !strings.Contains(msg, "at most 63") {
		t.Errorf("refusal %q does not say the name is too long", msg)
	}
	d, _ := tb.svc.Device(ctx, id)
	if d.State != gatehouse.StatePending || d.Name != "" {
		t.Errorf("a refused long name changed the device: state %s, name %q", d.State, d.Name)
	}
}
