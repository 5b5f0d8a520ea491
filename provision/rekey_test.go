package provision_test

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/simulate"
	"gatehouse/store"
)

// menderAsks sends the auth request a gateway's Mender client sends from
// boot on (deviceauth devices_v1.yaml: id_data is the identity as a JSON
// string; Ed25519 signs the raw body), and returns the token if deviceauth
// answered one. A reflashed gateway's client asks with its new key before
// any operator has looked (external-apis.md §0).
func menderAsks(t *testing.T, m *simulate.Mender, g *gateway) string {
	t.Helper()
	identity, _ := json.Marshal(map[string]string{"mac": g.mac})
	body, _ := json.Marshal(map[string]string{"id_data": string(identity), "pubkey": protocol.PublicKeyPEM(g.sig.PublicKey), "tenant_token": ""})
	sig, err := g.key.Sign(nil, body, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	token, _ := m.AuthRequest(context.Background(), body, base64.StdEncoding.EncodeToString(sig))
	return token
}

// reflashed is the same gateway (its MAC) with a new key.
func reflashed(t *testing.T, old *gateway) *gateway {
	g := newGateway(t)
	g.mac = old.mac
	return g
}

// rekeyed provisions and configures a gateway, then enrolls its reflashed
// self, whose Mender client asks first; it returns both and the ids.
func rekeyed(t *testing.T, tb *testBundle, name string) (old, fresh *gateway, id, cand string) {
	t.Helper()
	old, id = tb.provisionOne(t, name)
	if tok := menderAsks(t, tb.mender, old); tok == "" {
		t.Fatal("the provisioned gateway's Mender client got no token")
	}
	tb.register(t, name, "hub-a.azure-devices.net")
	tb.waitFor(t, old, gatehouse.StateConfigured)
	if err := tb.svc.Ack(context.Background(), old.sig); err != nil {
		t.Fatal(err)
	}
	fresh = reflashed(t, old)
	menderAsks(t, tb.mender, fresh)
	return old, fresh, id, tb.enroll(t, fresh).DeviceID
}

// TestRekeyKeepsNameAndIdentities is issue 12's re-key test: the reflashed
// gateway is a candidate beside its old self, approving it keeps the name
// and yields one Mender device whose only accepted auth set holds the new
// key, rotated DPS keys on the same enrollment, a new certificate and the
// old serial revoked, and a bundle sealed to the new key; the old key is
// refused from then on.
func TestRekeyKeepsNameAndIdentities(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.db = openDB(t, filepath.Join(t.TempDir(), "r.db"))
	tb.svc = startService(t, tb.db, followConfig(tb))
	ctx := context.Background()
	const name = "gw-rekey"
	old, fresh, id, cand := rekeyed(t, tb, name)
	before, _ := tb.svc.Device(ctx, id)
	menderID := stepOutput(before, gatehouse.StepMender)[gatehouse.OutMenderDeviceID]
	oldSerial := stepOutput(before, gatehouse.StepVault)[gatehouse.OutSerial]
	oldDPS := tb.dps.Enrollments()[0]

	c, err := tb.svc.Device(ctx, cand)
	if err != nil || c.State != gatehouse.StatePending || c.RekeyOf == nil || c.RekeyOf.ID != id || c.RekeyOf.Name != name {
		t.Fatalf("candidate = %+v (%v); want a pending re-key of %s", c, err, id)
	}
	if before.RekeyCandidates == nil || before.RekeyCandidates[0] != cand {
		t.Fatalf("gateway's candidates = %v, want [%s]", before.RekeyCandidates, cand)
	}

	d, err := tb.svc.Approve(ctx, "token:alice", cand, provision.Approval{})
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != id || d.Name != name || d.Fingerprint != fresh.sig.Fingerprint {
		t.Fatalf("approved re-key = %+v; want gateway %s named %s with the new key", d, id, name)
	}
	// With follow-ups on, the gateway may be configured again before a
	// poll sees it provisioned; both hold the new bundle.
	st := tb.waitFor(t, fresh, gatehouse.StateProvisioned, gatehouse.StateConfigured)
	checkRekeyBundle(t, tb, fresh, st.Bundle, name, oldDPS.PrimaryKey, oldSerial)

	// Mender: the same device, the new key its only auth set, accepted.
	if tb.mender.Len() != 1 {
		t.Fatalf("%d Mender devices, want 1", tb.mender.Len())
	}
	dev, _ := tb.mender.Device(menderID)
	if len(dev.AuthSets) != 1 || dev.AuthSets[0].Status != gatehouse.MenderAccepted || dev.AuthSets[0].PublicKey != protocol.PublicKeyPEM(fresh.sig.PublicKey) {
		t.Fatalf("Mender device %s auth sets = %+v; want only the new key, accepted", menderID, dev.AuthSets)
	}
	if tags := tb.mender.TagsOf(menderID); tags["name"] != name {
		t.Errorf("Mender tags = %v", tags)
	}
	if menderAsks(t, tb.mender, old) != "" {
		t.Error("Mender still gives the old key a token")
	}

	// DPS: the same enrollment with new keys; the old key no longer registers.
	if tb.dps.Len() != 1 {
		t.Fatalf("%d enrollments, want 1", tb.dps.Len())
	}
	if err := tb.dps.Register(name, oldDPS.PrimaryKey, "hub-a.azure-devices.net"); err == nil {
		t.Error("the old DPS key still registers")
	}
	tb.register(t, name, "hub-a.azure-devices.net")
	tb.waitFor(t, fresh, gatehouse.StateConfigured)

	// Vault: the old serial revoked once the new one is kept.
	if !eventually(waitTimeout, func() bool { return slices.Contains(tb.pki.Revoked(), oldSerial) }) {
		t.Fatalf("old serial %s not revoked; revoked %v", oldSerial, tb.pki.Revoked())
	}
	if live := tb.pki.Live(); len(live) != 1 || live[0].Serial == oldSerial {
		t.Fatalf("live certificates = %d, want the new one only", len(live))
	}
	checkKeptCerts(t, tb, id, oldSerial)

	// The old key is refused everywhere; the candidate is gone into the gateway.
	_, err = tb.svc.Wait(ctx, old.sig, "", "x", 0)
	wantCode(t, err, gatehouse.EFORBIDDEN)
	_, err = tb.svc.Enroll(ctx, old.sig, protocol.EnrollRequest{MAC: old.mac, SealKey: old.sealKey(t)}, "x")
	wantCode(t, err, gatehouse.EFORBIDDEN)
	wantCode(t, tb.svc.Ack(ctx, old.sig), gatehouse.EFORBIDDEN)
	_, err = tb.svc.Device(ctx, cand)
	wantCode(t, err, gatehouse.ENOTFOUND)
	if l, _ := tb.svc.ListDevices(ctx, provision.ListFilter{}); l.Total != 1 {
		t.Errorf("%d devices listed, want the one gateway", l.Total)
	}
	assertEvents(t, tb, id, "rekey_candidate", "rekey_approved", "certificate_revoked", "manifest_applied")
	assertAudited(t, tb, provision.ActionDeviceRekey, id)
}

// checkRekeyBundle checks the bundle the new key receives: the gateway's
// name, a DPS key that is the enrollment's new one, and a certificate that
// is new and matches its sealed private key, all sealed to the new key.
func checkRekeyBundle(t *testing.T, tb *testBundle, g *gateway, b *protocol.Bundle, name, oldKey, oldSerial string) {
	t.Helper()
	if b == nil || b.Name != name || b.DPSRegistrationID != name {
		t.Fatalf("bundle = %+v", b)
	}
	seal, _ := protocol.DeriveSealKey(g.key)
	primary, err := protocol.Open(seal, protocol.FieldDPSPrimaryKey, b.Sealed[protocol.FieldDPSPrimaryKey])
	if err != nil || string(primary) != tb.dps.Enrollments()[0].PrimaryKey || string(primary) == oldKey {
		t.Fatalf("sealed DPS key: %v; want the enrollment's rotated key", err)
	}
	priv, err := protocol.Open(seal, protocol.FieldPrivateKey, b.Sealed[protocol.FieldPrivateKey])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair([]byte(b.Certificate), priv); err != nil {
		t.Fatalf("certificate and sealed key do not match: %v", err)
	}
	block, _ := pem.Decode([]byte(b.Certificate))
	x, err := x509.ParseCertificate(block.Bytes)
	if err != nil || x.Subject.CommonName != name || simulate.FormatSerial(x.SerialNumber) == oldSerial {
		t.Fatalf("certificate %v (%v); want a new one for %s", x.Subject, err, name)
	}
}

// checkKeptCerts: gatehouse keeps both certificates, the old one marked
// revoked and the new one from the re-key live.
func checkKeptCerts(t *testing.T, tb *testBundle, id, oldSerial string) {
	t.Helper()
	var certs []gatehouse.DeviceCert
	var err error
	ok := eventually(waitTimeout, func() bool {
		err = tb.db.InTx(context.Background(), func(tx *store.Tx) error {
			certs, err = tx.Certificates(context.Background(), id)
			return err
		})
		return len(certs) == 2 && certs[1].Serial == oldSerial && certs[1].RevokedAt != nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !ok || certs[0].Origin != gatehouse.CertFromRekey || certs[0].RevokedAt != nil {
		t.Fatalf("kept certificates = %+v; want the re-key's live and the old one revoked", certs)
	}
}

func assertAudited(t *testing.T, tb *testBundle, action, target string) {
	t.Helper()
	page, err := tb.svc.AuditLog(context.Background(), provision.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page.Entries {
		if e.Action == action && e.Target == target && e.Result == "ok" {
			return
		}
	}
	t.Errorf("no ok %s entry for %s in the audit log", action, target)
}

// TestRekeyCandidateWaitsAndDismissalLeavesGatewayUntouched: a candidate is
// never approved by itself, approving it with another name or labels is
// refused and changes nothing, and dismissing it leaves the gateway, its
// key and its backend objects as they were.
func TestRekeyCandidateWaitsAndDismissalLeavesGatewayUntouched(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	old, id := tb.provisionOne(t, "gw-keep")
	fresh := reflashed(t, old)
	cand := tb.enroll(t, fresh).DeviceID
	before, _ := tb.svc.Device(ctx, id)
	mender, dps, certs := tb.mender.Devices(), tb.dps.Enrollments(), tb.pki.Live()

	// However often it asks, the candidate stays pending.
	for range 3 {
		if st := tb.enroll(t, fresh); st.State != string(gatehouse.StatePending) || st.DeviceID != cand {
			t.Fatalf("candidate sees %+v; want it pending", st)
		}
	}
	for a, code := range map[*provision.Approval]string{{Name: "gw-other"}: gatehouse.ECONFLICT, {Name: "gw-keep"}: gatehouse.ECONFLICT,
		{Labels: map[string]string{"site": "x"}}: gatehouse.EINVALID} {
		_, err := tb.svc.Approve(ctx, "op", cand, *a)
		wantCode(t, err, code)
	}
	if _, err := tb.svc.Dismiss(ctx, "op", cand); err != nil {
		t.Fatal(err)
	}
	after, _ := tb.svc.Device(ctx, id)
	if after.Fingerprint != before.Fingerprint || after.State != before.State || !after.UpdatedAt.Equal(before.UpdatedAt) || len(after.RekeyCandidates) != 0 {
		t.Fatalf("gateway changed: %+v, was %+v", after, before)
	}
	if st, err := tb.svc.Wait(ctx, old.sig, "", "x", 0); err != nil || st.DeviceID != id {
		t.Fatalf("the gateway's own key after the dismissal: %+v, %v", st, err)
	}
	if !sameJSON(tb.mender.Devices(), mender) || !sameJSON(tb.dps.Enrollments(), dps) || !sameJSON(tb.pki.Live(), certs) {
		t.Error("dismissing a re-key candidate changed a backend")
	}
	if st := tb.enroll(t, fresh); st.State != string(gatehouse.StateDismissed) {
		t.Fatalf("dismissed candidate sees %+v", st)
	}
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestRekeyCandidates: only an approved gateway's MAC makes a candidate (a
// pending or dismissed device's MAC does not), and the re-key waits while
// the gateway is still being provisioned.
func TestRekeyCandidates(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	pendingOne, dismissed := newGateway(t), newGateway(t)
	tb.enroll(t, pendingOne)
	if _, err := tb.svc.Dismiss(ctx, "op", tb.enroll(t, dismissed).DeviceID); err != nil {
		t.Fatal(err)
	}
	for _, g := range []*gateway{pendingOne, dismissed} {
		d, _ := tb.svc.Device(ctx, tb.enroll(t, reflashed(t, g)).DeviceID)
		if d.RekeyOf != nil {
			t.Errorf("a new key with the MAC of a %s device is a re-key candidate", d.State)
		}
	}

	tb.pki.Block() // hold the gateway in provisioning
	defer tb.pki.Unblock()
	g := newGateway(t)
	id := tb.enroll(t, g).DeviceID
	if _, err := tb.svc.Approve(ctx, "op", id, provision.Approval{Name: "gw-busy"}); err != nil {
		t.Fatal(err)
	}
	cand := tb.enroll(t, reflashed(t, g)).DeviceID
	_, err := tb.svc.Approve(ctx, "op", cand, provision.Approval{})
	wantCode(t, err, gatehouse.ECONFLICT)
	if d, _ := tb.svc.Device(ctx, cand); d.State != gatehouse.StatePending || d.RekeyOf == nil || d.RekeyOf.ID != id {
		t.Fatalf("refused re-key changed the candidate: %+v", d)
	}
	tb.pki.Unblock()
	tb.waitFor(t, g, gatehouse.StateProvisioned)
	if _, err := tb.svc.Approve(ctx, "op", cand, provision.Approval{}); err != nil {
		t.Fatalf("re-key once provisioned: %v", err)
	}
}

// TestRekeyLostResponses loses one answer of each backend during the
// re-key run: the retried steps meet their own work, leaving one Mender
// device holding only the new key, one enrollment whose key the bundle
// holds, and one valid certificate, the bundle's.
func TestRekeyLostResponses(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 2; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			tb := setup(t)
			tb.mender.SetInventoryDelay(0)
			tb.db = openDB(t, filepath.Join(t.TempDir(), "lost.db"))
			tb.svc = startService(t, tb.db, followConfig(tb))
			name := fmt.Sprintf("gw-relost-%d", n)
			_, fresh, id, cand := rekeyed(t, tb, name)
			tb.mender.LoseNext(n)
			tb.dps.LoseNext(n)
			tb.pki.LoseNext(n)
			if _, err := tb.svc.Approve(context.Background(), "op", cand, provision.Approval{}); err != nil {
				t.Fatal(err)
			}
			st := tb.waitFor(t, fresh, gatehouse.StateConfigured)
			seal, _ := protocol.DeriveSealKey(fresh.key)
			primary, err := protocol.Open(seal, protocol.FieldDPSPrimaryKey, st.Bundle.Sealed[protocol.FieldDPSPrimaryKey])
			if err != nil || tb.dps.Len() != 1 || string(primary) != tb.dps.Enrollments()[0].PrimaryKey {
				t.Fatalf("bundle's DPS key does not open to the one enrollment's key (%d enrollments): %v", tb.dps.Len(), err)
			}
			ok := eventually(waitTimeout, func() bool { return len(tb.pki.Live()) == 1 })
			d, _ := tb.svc.Device(context.Background(), id)
			if live := tb.pki.Live(); !ok || live[0].Serial != stepOutput(d, gatehouse.StepVault)[gatehouse.OutSerial] {
				t.Fatalf("%d valid certificates; want only the bundle's", len(live))
			}
			dev := tb.mender.Devices()
			if len(dev) != 1 || len(dev[0].AuthSets) != 1 || dev[0].AuthSets[0].PublicKey != protocol.PublicKeyPEM(fresh.sig.PublicKey) {
				t.Fatalf("mender devices %+v; want one holding only the new key", dev)
			}
		})
	}
}

// TestRekeyCandidateOfDecommissionedGateway: once its gateway is
// decommissioned, a candidate is an ordinary pending device, approved with
// a name of its own; and a new key with that MAC is no candidate at all.
func TestRekeyCandidateOfDecommissionedGateway(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	old, id := tb.provisionOne(t, "gw-gone")
	cand := tb.enroll(t, reflashed(t, old)).DeviceID
	if _, err := tb.svc.Decommission(ctx, "op", id, false); err != nil {
		t.Fatal(err)
	}
	if !eventually(waitTimeout, func() bool {
		d, _ := tb.svc.Device(ctx, id)
		return d.State == gatehouse.StateDecommissioned
	}) {
		t.Fatal("the gateway was not decommissioned")
	}
	for _, c := range []string{cand, tb.enroll(t, reflashed(t, old)).DeviceID} {
		if d, _ := tb.svc.Device(ctx, c); d.RekeyOf != nil {
			t.Errorf("device %s is still a re-key candidate of a decommissioned gateway: %+v", c, d.RekeyOf)
		}
	}
	d, err := tb.svc.Approve(ctx, "op", cand, provision.Approval{Name: "gw-new"})
	if err != nil || d.ID != cand || d.Name != "gw-new" {
		t.Fatalf("approve = %+v, %v; want the device itself approved as gw-new", d, err)
	}
}
