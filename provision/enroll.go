package provision

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/store"
)

// Enroll records a signed introduction: an unknown key becomes a pending
// device, a known one is marked seen. It returns what the device may know.
func (s *Service) Enroll(ctx context.Context, sig *protocol.Signed, req protocol.EnrollRequest, addr string) (*protocol.Status, error) {
	mac, err := gatehouse.NormalizeMAC(req.MAC)
	if err != nil {
		return nil, err
	}
	// Checked once here, before anything is stored, so a key nothing can be
	// sealed to never reaches an operator's approval.
	if err := protocol.CheckSealKey(req.SealKey); err != nil {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "seal_key: %v", err)
	}
	if err := checkCSR(req.CSR); err != nil {
		return nil, err
	}
	var id, rekeyOf string
	var created bool
	code := s.code(sig.Fingerprint)
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		admit := func() error { return s.admitPending(ctx, tx, addr) }
		id, created, err = enrollTx(ctx, tx, sig, req, mac, addr, code, admit)
		if created && err == nil {
			rekeyOf, err = s.enrolledNew(ctx, tx, id, mac, sig.Fingerprint)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if created {
		s.log.InfoContext(ctx, "device enrolled", "device", id, "mac", mac, "fingerprint", sig.Fingerprint, "addr", addr)
		s.notify.Publish(id)
		publishIf(s.notify, rekeyOf) // the gateway's page shows its new candidate
		// What the transaction just wrote is the status: reading it back
		// would take the one SQLite connection once more per new gateway,
		// which a growing fleet's enrollments queue for. An allowlist's
		// approval runs as a job after the commit, so the device is
		// pending here; the agent hears of the approval in its wait.
		return s.newStatus(id, gatehouse.StatePending, sig.Fingerprint, code, ""), nil
	}
	return s.status(ctx, sig.Fingerprint)
}

// enrolledNew does what a new device's first enrollment starts, in its
// transaction: an allowlisted MAC's approval, a note of an earlier
// forgotten device, and the count of the pending queue. It returns the
// gateway the device is a re-key candidate of, if any.
func (s *Service) enrolledNew(ctx context.Context, tx *store.Tx, id, mac, fp string) (string, error) {
	if err := s.claimAllowlisted(ctx, tx, id, mac, fp); err != nil {
		return "", err
	}
	if err := noteForgotten(ctx, tx, id, fp, mac); err != nil {
		return "", err
	}
	s.pending.added()
	return rekeyTargetOf(ctx, tx, id)
}

// enrollTx stores the device's code with it, so duplicates among pending
// devices are found by an index. admit may refuse a key not seen before.
func enrollTx(ctx context.Context, tx *store.Tx, sig *protocol.Signed, req protocol.EnrollRequest, mac, addr, code string, admit func() error) (string, bool, error) {
	k, err := tx.FindKey(ctx, sig.Fingerprint)
	if err == nil {
		if string(k.SealKey) != string(req.SealKey) || k.CSR != req.CSR {
			if err := tx.UpdateKeyRequest(ctx, k.Fingerprint, req.SealKey, req.CSR); err != nil {
				return "", false, err
			}
		}
		if err := tx.SetAgentClaims(ctx, k.DeviceID, claim(req.Hostname, maxHostname), claim(req.AgentVersion, maxAgentVersion)); err != nil {
			return "", false, err
		}
		return k.DeviceID, false, tx.TouchDevice(ctx, k.DeviceID, addr, 0)
	}
	if gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
		return "", false, err
	}
	if err := admit(); err != nil {
		return "", false, err
	}
	d := &gatehouse.Device{ID: newID(), State: gatehouse.StatePending, MAC: mac, Fingerprint: sig.Fingerprint,
		VerificationCode: code, SourceAddr: addr,
		Hostname: claim(req.Hostname, maxHostname), AgentVersion: claim(req.AgentVersion, maxAgentVersion)}
	key := gatehouse.DeviceKey{Fingerprint: sig.Fingerprint, KeyType: sig.KeyType, PublicKey: sig.PublicKey,
		SealKey: req.SealKey, CSR: req.CSR}
	if err := tx.CreateDevice(ctx, d, key); err != nil {
		return "", false, err
	}
	if err := markRekeyCandidate(ctx, tx, d, sig.KeyType); err != nil {
		return "", false, err
	}
	detail := "mac " + mac + ", " + sig.KeyType + " key " + sig.Fingerprint[:16] + ", from " + addr
	return d.ID, true, tx.AddEvent(ctx, gatehouse.Event{DeviceID: d.ID, Kind: "enrolled", Detail: detail})
}

// Bounds on what an agent says of itself: a DNS name's longest, and more
// than any version string needs.
const (
	maxHostname     = 253
	maxAgentVersion = 64
)

// claim is a hostname or version as the agent sent it, made fit to show:
// without control characters or invalid UTF-8 (which could reorder or
// hide text in a page or a terminal) and at most limit runes. It is never
// refused: a gateway's odd hostname must not keep it from enrolling.
func claim(s string, limit int) string {
	var b strings.Builder
	n := 0
	for _, r := range strings.TrimSpace(s) {
		if n == limit {
			break
		}
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			continue
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// checkCSR accepts no CSR, or one that parses and is signed by its own key.
func checkCSR(csr string) error {
	if csr == "" {
		return nil
	}
	block, _ := pem.Decode([]byte(csr))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return gatehouse.Errorf(gatehouse.EINVALID, "csr is not a PEM CERTIFICATE REQUEST")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "csr does not parse")
	}
	if err := req.CheckSignature(); err != nil {
		return gatehouse.Errorf(gatehouse.EINVALID, "csr signature does not verify")
	}
	return nil
}

// Wait answers as soon as the device's state differs from the one it last
// saw, or when timeout passes, whichever is first. A wait the process does
// not hold (see holds) is answered at once with PollAfter set, and so is a
// held one whose place a newer waiter takes.
func (s *Service) Wait(ctx context.Context, sig *protocol.Signed, seen, addr string, timeout time.Duration) (*protocol.Status, error) {
	// A gateway that asked before is subscribed to before its status is
	// read, so a change after the read wakes it and that one read serves
	// both a held wait and one turned away: every further read takes the
	// one SQLite connection the fleet's enrollments queue for.
	var wake <-chan struct{}
	known := s.holds.deviceOf(sig.Fingerprint)
	if known != "" {
		ch, cancel := s.notify.Subscribe(known)
		defer cancel()
		wake = ch
	}
	ds, err := s.db.Checkin(ctx, sig.Fingerprint, addr, s.cfg.SeenEvery)
	st, err := s.statusOf(ctx, sig.Fingerprint, ds, err)
	if err != nil || st.State != seen || st.Bundle != nil {
		return st, err
	}
	hd := s.holds.acquire(sig.Fingerprint, ds.DeviceID, st.State)
	if hd == nil {
		return s.askLater(st), nil
	}
	defer s.holds.release(hd)
	if ds.DeviceID != known {
		// A first wait, or the key moved to another device (a re-key): a
		// change between the read and subscribing woke no one, so it reads
		// once more once subscribed.
		ch, cancel := s.notify.Subscribe(ds.DeviceID)
		defer cancel()
		wake = ch
		if st, err = s.status(ctx, sig.Fingerprint); err != nil || st.State != seen || st.Bundle != nil {
			return st, err
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-wake:
		case <-hd.evicted:
			return s.askLater(st), nil
		case <-timer.C:
			return st, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if st, err = s.status(ctx, sig.Fingerprint); err != nil || st.State != seen || st.Bundle != nil {
			return st, err
		}
	}
}

// askLater tells a gateway whose wait is not held when to ask again.
func (s *Service) askLater(st *protocol.Status) *protocol.Status {
	st.PollAfter = int(s.holds.pollAfter().Round(time.Second) / time.Second)
	return st
}

// HeldPolls is how many device waits are held open now, and how many
// gateways this process knows to be waiting in all.
func (s *Service) HeldPolls() (held, waiting int) { return s.holds.counts() }

// Ack records that the device wrote its bundle and deletes the sealed
// secrets, so they exist nowhere but on the device.
func (s *Service) Ack(ctx context.Context, sig *protocol.Signed) error {
	var id string
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		k, err := tx.FindKey(ctx, sig.Fingerprint)
		if err != nil {
			return unknownKey(err)
		}
		id = k.DeviceID
		return ackTx(ctx, tx, id)
	})
	if err == nil {
		s.notify.Publish(id)
	}
	return err
}

func ackTx(ctx context.Context, tx *store.Tx, id string) error {
	d, err := tx.Device(ctx, id)
	if err != nil {
		return err
	}
	if err := refuseDecommissioned(ctx, tx, d); err != nil {
		return err
	}
	if !holdsBundle(d.State) {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "device is %s; nothing to acknowledge", d.State)
	}
	if acked, err := tx.Acked(ctx, id); err != nil || acked {
		return err
	}
	now := tx.Now()
	if err := tx.UpdateDevice(ctx, id, store.DeviceUpdate{AckedAt: &now}); err != nil {
		return err
	}
	if err := tx.ClearSealed(ctx, id); err != nil {
		return err
	}
	return tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "bundle_delivered", Actor: "device"})
}

func unknownKey(err error) error {
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "this key has not enrolled; call enroll first")
	}
	return err
}

// status is what a device may learn about itself, with its bundle when
// provisioning is complete and the bundle not yet acknowledged.
func (s *Service) status(ctx context.Context, fp string) (*protocol.Status, error) {
	ds, err := s.db.DeviceStatus(ctx, fp)
	return s.statusOf(ctx, fp, ds, err)
}

// statusOf answers from one read of the device's status (ds, or err from
// reading it). Only a device with a bundle due, or one to refuse, needs
// more: its steps, or who decommissioned it; it is read again whole, in one
// snapshot, so the bundle matches the state and acknowledgement it is sent
// with.
func (s *Service) statusOf(ctx context.Context, fp string, ds *store.DeviceStatus, err error) (*protocol.Status, error) {
	if err != nil {
		return nil, unknownKey(err)
	}
	if ds.State == gatehouse.StateDecommissioned || holdsBundle(ds.State) && !ds.Acked {
		return s.fullStatus(ctx, fp)
	}
	return s.newStatus(ds.DeviceID, ds.State, ds.Fingerprint, ds.VerificationCode, ds.Name), nil
}

// fullStatus is status read with the device's steps, in one transaction.
func (s *Service) fullStatus(ctx context.Context, fp string) (*protocol.Status, error) {
	var st *protocol.Status
	err := s.db.View(ctx, func(tx *store.Tx) error {
		k, err := tx.FindKey(ctx, fp)
		if err != nil {
			return unknownKey(err)
		}
		d, err := tx.Device(ctx, k.DeviceID)
		if err != nil {
			return err
		}
		if err := refuseDecommissioned(ctx, tx, d); err != nil {
			return err
		}
		st = s.newStatus(d.ID, d.State, d.Fingerprint, d.VerificationCode, d.Name)
		if holdsBundle(d.State) {
			acked, err := tx.Acked(ctx, d.ID)
			if err == nil && !acked {
				st.Bundle = bundleOf(d)
			}
			return err
		}
		return nil
	})
	return st, err
}

// holdsBundle says whether a device in state s has had its bundle made. A
// stalled gateway has too: it may have been off line since, and must still
// get its credentials when it returns.
func holdsBundle(s gatehouse.State) bool {
	return s == gatehouse.StateProvisioned || s == gatehouse.StateConfigured || s == gatehouse.StateStalled
}

// newStatus is the status of a device from the fields a device may see. It
// carries the verification code, one not stored yet computed: the agent
// cannot compute it, so it prints the one the server answers with.
func (s *Service) newStatus(id string, state gatehouse.State, fp, code, name string) *protocol.Status {
	if code == "" {
		code = s.code(fp)
	}
	st := &protocol.Status{DeviceID: id, State: string(state), Fingerprint: fp, VerificationCode: code, Name: name}
	if state == gatehouse.StateFailed {
		// Backend error text is for operators; the device only needs to know
		// to keep waiting.
		st.Reason = "a provisioning step failed; the server keeps retrying"
	}
	return st
}

// bundleOf assembles the bundle from the steps' outputs; secret fields stay
// sealed to the device.
func bundleOf(d *gatehouse.Device) *protocol.Bundle {
	b := &protocol.Bundle{Name: d.Name, Sealed: map[string][]byte{}}
	for _, st := range d.Steps {
		o := st.Output
		b.DPSIDScope = first(b.DPSIDScope, o[gatehouse.OutDPSIDScope])
		b.DPSRegistrationID = first(b.DPSRegistrationID, o[gatehouse.OutDPSRegistrationID])
		b.Certificate = first(b.Certificate, o[gatehouse.OutCertificate])
		b.CAChain = first(b.CAChain, o[gatehouse.OutCAChain])
		for k, v := range st.Sealed {
			b.Sealed[k] = v
		}
	}
	return b
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// fillDevice sets the fields derived from stored ones. The stored code is
// the one duplicates are found by; one not stored yet is computed.
func (s *Service) fillDevice(d *gatehouse.Device) {
	if d.VerificationCode == "" {
		d.VerificationCode = s.code(d.Fingerprint)
	}
	if st := findStep(d, gatehouse.StepHub); st != nil {
		d.Hub = st.Output[gatehouse.OutAssignedHub]
	}
}
