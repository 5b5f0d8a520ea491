package provision_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/simulate"
	"gatehouse/store"
)

// dueRole issues certificates already past half their lifetime: OpenBao's
// not_before_duration backdates NotBefore (path_roles.go), so with 2 h of
// backdating and a 1 h max_ttl a fresh certificate is 2 h into its 3 h
// life, and renewal is due at once without moving any clock.
func dueRole() simulate.VaultRole {
	r := simulate.RecommendedVaultRole()
	r.NotBeforeDuration, r.MaxTTL = 2*time.Hour, time.Hour
	return r
}

// provisioned enrolls, approves and delivers a gateway's bundle.
func provisioned(t *testing.T, tb *testBundle, g *gateway, name string) string {
	t.Helper()
	id := tb.enroll(t, g).DeviceID
	if _, err := tb.svc.Approve(context.Background(), "token:alice", id, provision.Approval{Name: name}); err != nil {
		t.Fatal(err)
	}
	tb.waitFor(t, g, gatehouse.StateProvisioned)
	if err := tb.svc.Ack(context.Background(), g.sig); err != nil {
		t.Fatal(err)
	}
	return id
}

func (g *gateway) renew(t *testing.T, tb *testBundle) (*protocol.Renewal, error) {
	t.Helper()
	return tb.svc.Renew(context.Background(), g.sig, protocol.RenewRequest{SealKey: g.sealKey(t)})
}

// liveFor lists the serials the PKI holds valid for a name.
func liveFor(tb *testBundle, name string) []string {
	var out []string
	for _, c := range tb.pki.Live() {
		if certCN(c.CertificatePEM) == name {
			out = append(out, c.Serial)
		}
	}
	return out
}

func certCN(pemText string) string {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return ""
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return ""
	}
	return c.Subject.CommonName
}

// waitRevoked waits (on the timeline's notifications) until the PKI no
// longer lists serial as valid.
func waitRevoked(t *testing.T, tb *testBundle, id, serial string) {
	t.Helper()
	wake, cancel := tb.svc.Notifier().Subscribe(id)
	defer cancel()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		certs, err := tb.svc.Certificates(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range certs {
			if c.Serial == serial && c.RevokedAt != nil {
				for _, s := range tb.pki.Revoked() {
					if s == serial {
						return
					}
				}
				t.Fatalf("certificate %s marked revoked but the PKI did not revoke it", serial)
			}
		}
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("certificate %s not revoked; kept: %+v", serial, certs)
		}
	}
}

func TestRenewBeforeExpiryRevokesOldSerialAfterAck(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if err := tb.pki.SetRole(dueRole()); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t)
	id := provisioned(t, tb, g, "gw-renew")
	before, err := tb.svc.Certificates(context.Background(), id)
	if err != nil || len(before) != 1 || before[0].Origin != gatehouse.CertFromProvision {
		t.Fatalf("kept before renewal = %+v, %v; want the provisioning one", before, err)
	}
	old := before[0].Serial

	r, err := g.renew(t, tb)
	if err != nil {
		t.Fatal(err)
	}
	if r.Serial == old || r.Replaces != old || r.Name != "gw-renew" || !r.NotAfter.After(time.Now()) {
		t.Fatalf("renewal = serial %s replaces %s name %s until %s; want a new serial replacing %s", r.Serial, r.Replaces, r.Name, r.NotAfter, old)
	}
	key, _ := protocol.DeriveSealKey(g.key)
	priv, err := protocol.Open(key, protocol.FieldPrivateKey, r.Sealed[protocol.FieldPrivateKey])
	if err != nil {
		t.Fatalf("sealed key does not open: %v", err)
	}
	if _, err := tls.X509KeyPair([]byte(r.Certificate), priv); err != nil {
		t.Fatalf("renewed certificate and its key do not match: %v", err)
	}
	// Until the gateway confirms, the old certificate stays valid: it is
	// what the gateway still uses.
	if live := liveFor(tb, "gw-renew"); len(live) != 2 {
		t.Fatalf("live before ack = %v; want old and new", live)
	}
	if err := tb.svc.RenewAck(context.Background(), g.sig, protocol.RenewAckRequest{Serial: r.Serial}); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, tb, id, old)
	if live := liveFor(tb, "gw-renew"); len(live) != 1 || live[0] != r.Serial {
		t.Fatalf("live after ack = %v; want only %s", live, r.Serial)
	}
	after, _ := tb.svc.Certificates(context.Background(), id)
	if len(after) != 2 || after[0].Serial != r.Serial || after[0].Origin != gatehouse.CertFromRenewal || after[0].RevokedAt != nil || after[1].RevokedAt == nil {
		t.Fatalf("kept after = %+v; want the renewal live, then the provisioning one revoked", after)
	}
	d, _ := tb.svc.Device(context.Background(), id)
	if step(d, gatehouse.StepVault).Output[gatehouse.OutSerial] != r.Serial {
		t.Errorf("vault step output still names %s, want the renewed %s", step(d, gatehouse.StepVault).Output[gatehouse.OutSerial], r.Serial)
	}
	// Confirming again changes nothing.
	if err := tb.svc.RenewAck(context.Background(), g.sig, protocol.RenewAckRequest{Serial: r.Serial}); err != nil {
		t.Fatalf("second ack: %v", err)
	}
	assertEvents(t, tb, id, "certificate_renewal_issued", "certificate_renewed", "certificate_revoked")
}

func TestRenewRepeatedAnswersTheSameCertificate(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if err := tb.pki.SetRole(dueRole()); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t)
	provisioned(t, tb, g, "gw-repeat")
	first, err := g.renew(t, tb)
	if err != nil {
		t.Fatal(err)
	}
	n := tb.pki.Len()
	// The agent never saw the answer and asks again (a new nonce).
	again, err := g.renew(t, tb)
	if err != nil {
		t.Fatal(err)
	}
	if again.Serial != first.Serial || again.Certificate != first.Certificate || tb.pki.Len() != n {
		t.Fatalf("repeat issued %s (PKI holds %d, had %d); want %s again", again.Serial, tb.pki.Len(), n, first.Serial)
	}
}

func TestRenewLostPKIAnswerLeavesOneNewCertificate(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if err := tb.pki.SetRole(dueRole()); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t)
	id := provisioned(t, tb, g, "gw-lost")
	old := liveFor(tb, "gw-lost")
	tb.pki.LoseNext(1) // the PKI issues, the answer never arrives
	_, err := g.renew(t, tb)
	wantCode(t, err, gatehouse.EUNAVAILABLE)
	if live := liveFor(tb, "gw-lost"); len(live) != 2 {
		t.Fatalf("live after the lost answer = %v; want old and the lost one", live)
	}
	r, err := g.renew(t, tb)
	if err != nil {
		t.Fatal(err)
	}
	live := liveFor(tb, "gw-lost")
	if len(live) != 2 || !contains(live, old[0]) || !contains(live, r.Serial) {
		t.Fatalf("live after the retry = %v; want only the old %s and the new %s (the lost one revoked)", live, old[0], r.Serial)
	}
	if err := tb.svc.RenewAck(context.Background(), g.sig, protocol.RenewAckRequest{Serial: r.Serial}); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, tb, id, old[0])
	if live := liveFor(tb, "gw-lost"); len(live) != 1 || live[0] != r.Serial {
		t.Fatalf("live after ack = %v, want only %s", live, r.Serial)
	}
	assertEvents(t, tb, id, "certificate_renewal_failed")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestRenewTooEarlyIssuesNothing(t *testing.T) {
	t.Parallel()
	tb := setup(t) // the recommended role: a year's certificate
	g := newGateway(t)
	provisioned(t, tb, g, "gw-early")
	n := tb.pki.Len()
	_, err := g.renew(t, tb)
	wantCode(t, err, gatehouse.ECONFLICT)
	if !strings.Contains(err.Error(), "too early") || tb.pki.Len() != n {
		t.Fatalf("err = %v, PKI holds %d (had %d); want a too-early refusal and nothing issued", err, tb.pki.Len(), n)
	}
}

func TestRenewRefusedAfterDecommission(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if err := tb.pki.SetRole(dueRole()); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t)
	id := provisioned(t, tb, g, "gw-gone")
	setState(t, tb.db, id, gatehouse.StateDecommissioned)
	n := tb.pki.Len()
	_, err := g.renew(t, tb)
	wantCode(t, err, gatehouse.EGONE)
	if !strings.Contains(err.Error(), "decommissioned") || tb.pki.Len() != n {
		t.Fatalf("err = %v, PKI holds %d (had %d); want a decommission refusal and nothing issued", err, tb.pki.Len(), n)
	}
}

func TestRenewRefusedForRetiredKey(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if err := tb.pki.SetRole(dueRole()); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t)
	id := provisioned(t, tb, g, "gw-rekeyed")
	// What a re-key leaves: the device's current key is another one.
	other := newGateway(t)
	_, err := tb.db.SQL().ExecContext(context.Background(), `INSERT INTO device_keys
		(fingerprint, device_id, key_type, public_key, seal_key, csr, mac, created_at) VALUES (?, ?, 'ed25519', ?, ?, '', ?, 0)`,
		other.sig.Fingerprint, id, other.sig.PublicKey, other.sealKey(t), g.mac)
	if err == nil {
		_, err = tb.db.SQL().ExecContext(context.Background(), `UPDATE devices SET fingerprint = ? WHERE id = ?`, other.sig.Fingerprint, id)
	}
	if err != nil {
		t.Fatal(err)
	}
	n := tb.pki.Len()
	_, err = g.renew(t, tb)
	wantCode(t, err, gatehouse.EFORBIDDEN)
	if !strings.Contains(err.Error(), "no longer") || tb.pki.Len() != n {
		t.Fatalf("err = %v, PKI holds %d (had %d); want a retired-key refusal and nothing issued", err, tb.pki.Len(), n)
	}
}

func TestRenewRejectsBadInput(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	g := newGateway(t)
	provisioned(t, tb, g, "gw-bad")
	_, err := tb.svc.Renew(context.Background(), g.sig, protocol.RenewRequest{SealKey: []byte("short")})
	wantCode(t, err, gatehouse.EINVALID)
	_, err = tb.svc.Renew(context.Background(), g.sig, protocol.RenewRequest{SealKey: g.sealKey(t), CSR: "not a csr"})
	wantCode(t, err, gatehouse.EINVALID)
	err = tb.svc.RenewAck(context.Background(), g.sig, protocol.RenewAckRequest{Serial: "aa:bb"})
	wantCode(t, err, gatehouse.ENOTFOUND)
	stranger := newGateway(t)
	_, err = stranger.renew(t, tb)
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func TestCertsExpiringListsOnlyTheSoonOnes(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	soon, later := newGateway(t), newGateway(t)
	if err := tb.pki.SetRole(dueRole()); err != nil { // expires within the hour
		t.Fatal(err)
	}
	provisioned(t, tb, soon, "gw-soon")
	if err := tb.pki.SetRole(simulate.RecommendedVaultRole()); err != nil { // a year
		t.Fatal(err)
	}
	provisioned(t, tb, later, "gw-later")
	list, err := tb.svc.CertsExpiring(context.Background(), 14*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "gw-soon" || list[0].DeviceID == "" {
		t.Fatalf("expiring within 14 days = %+v; want only gw-soon", list)
	}
	_, err = tb.svc.CertsExpiring(context.Background(), 0)
	wantCode(t, err, gatehouse.EINVALID)
}

func setState(t *testing.T, db *store.DB, id string, s gatehouse.State) {
	t.Helper()
	err := db.InTx(context.Background(), func(tx *store.Tx) error {
		return tx.UpdateDevice(context.Background(), id, store.DeviceUpdate{State: &s})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A second request while the first is still asking the PKI (the agent gave
// up waiting and retried) is told to come back; it does not ask again.
func TestRenewWhileInProgressAsksThePKIOnce(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if err := tb.pki.SetRole(dueRole()); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t)
	id := provisioned(t, tb, g, "gw-busy")
	n := tb.pki.Len()
	tb.pki.Block()
	first := make(chan error, 1)
	req := protocol.RenewRequest{SealKey: g.sealKey(t)}
	go func() {
		_, err := tb.svc.Renew(context.Background(), g.sig, req)
		first <- err
	}()
	claimed := func() bool {
		var c int
		err := tb.db.SQL().QueryRowContext(context.Background(), `SELECT COUNT(*) FROM renewals WHERE device_id = ?`, id).Scan(&c)
		return err == nil && c == 1
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for !claimed() {
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatal("the first renewal never claimed")
		}
	}
	_, err := g.renew(t, tb)
	wantCode(t, err, gatehouse.EUNAVAILABLE)
	if gatehouse.ErrorRetryAfter(err) <= 0 {
		t.Errorf("in-progress refusal carries no Retry-After: %v", err)
	}
	tb.pki.Unblock()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if tb.pki.Len() != n+1 {
		t.Fatalf("PKI holds %d, had %d: want exactly one new certificate", tb.pki.Len(), n)
	}
}

// A renewal the old key asked for and never confirmed is given up when the
// gateway's new key (after a re-key) renews: it is revoked, and the new key
// gets a certificate of its own.
func TestRenewAfterRekeyGivesUpTheOldKeysRenewal(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if err := tb.pki.SetRole(dueRole()); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t)
	id := provisioned(t, tb, g, "gw-swap")
	stale, err := g.renew(t, tb)
	if err != nil {
		t.Fatal(err)
	}
	other := newGateway(t)
	_, err = tb.db.SQL().ExecContext(context.Background(), `INSERT INTO device_keys
		(fingerprint, device_id, key_type, public_key, seal_key, csr, mac, created_at) VALUES (?, ?, 'ed25519', ?, ?, '', ?, 0)`,
		other.sig.Fingerprint, id, other.sig.PublicKey, other.sealKey(t), g.mac)
	if err == nil {
		_, err = tb.db.SQL().ExecContext(context.Background(), `UPDATE devices SET fingerprint = ? WHERE id = ?`, other.sig.Fingerprint, id)
	}
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := other.renew(t, tb)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Serial == stale.Serial {
		t.Fatalf("the new key got the old key's renewal %s", stale.Serial)
	}
	key, _ := protocol.DeriveSealKey(other.key)
	if _, err := protocol.Open(key, protocol.FieldPrivateKey, fresh.Sealed[protocol.FieldPrivateKey]); err != nil {
		t.Fatalf("the new renewal is not sealed to the new key: %v", err)
	}
	waitRevoked(t, tb, id, stale.Serial)
	assertEvents(t, tb, id, "certificate_renewal_abandoned")
}

// Decommissioning a gateway that renewed revokes every certificate it was
// given, the renewed one too, and its key renews nothing afterwards.
func TestDecommissionAfterRenewalRevokesAllAndRefusesRenewal(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	if err := tb.pki.SetRole(dueRole()); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t)
	id := provisioned(t, tb, g, "gw-retire")
	r, err := g.renew(t, tb)
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.svc.RenewAck(context.Background(), g.sig, protocol.RenewAckRequest{Serial: r.Serial}); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.svc.Decommission(context.Background(), "token:alice", id, false); err != nil {
		t.Fatal(err)
	}
	waitRemoved(t, tb.svc, id)
	if live := liveFor(tb, "gw-retire"); len(live) != 0 {
		t.Fatalf("live after decommission = %v; want none (the renewed %s too)", live, r.Serial)
	}
	n := tb.pki.Len()
	_, err = g.renew(t, tb)
	wantCode(t, err, gatehouse.EGONE)
	if tb.pki.Len() != n {
		t.Fatal("a decommissioned gateway's renewal issued a certificate")
	}
}
