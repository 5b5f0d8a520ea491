package provision

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/store"
)

// Renewal rules. A certificate renews from half its lifetime on: together
// with one outstanding renewal per gateway, that caps how often even a
// stolen agent can make the PKI issue.
const (
	renewFrom = 0.5
	// renewClaim is how long one request holds a gateway's renewal while
	// it asks the PKI; another request meanwhile is told to come back.
	renewClaim = 2 * time.Minute
	// renewCallTimeout bounds the PKI call, well inside the claim.
	renewCallTimeout = time.Minute
	// renewAbandonAfter: a renewed certificate that waits for a seal key
	// the agent no longer sends is given up (revoked, issued anew) only
	// this long after it was issued.
	renewAbandonAfter = time.Hour
	// renewFailedRetry is what a gateway is told to wait when the PKI
	// did not renew.
	renewFailedRetry = time.Minute
)

// renewer is the configured backend that renews certificates, or nil.
func (s *Service) renewer() gatehouse.Renewer {
	for _, b := range s.cfg.Backends {
		if r, ok := b.(gatehouse.Renewer); ok {
			return r
		}
	}
	return nil
}

// renewPlan is what a claimed renewal will do.
type renewPlan struct {
	device *gatehouse.Device
	claim  store.Renewal     // the row as the claim stored it
	csr    string            // sign mode: what the PKI signs
	lost   time.Time         // an earlier attempt whose answer was lost began then
	keep   map[string]bool   // serials gatehouse keeps for the gateway
	ready  *protocol.Renewal // a renewal issued already: answered again as it is
}

// Renew gives a provisioned gateway a fresh certificate before its current
// one expires. It is safe to repeat: while the gateway has not confirmed a
// renewal, asking again answers the same certificate, and an attempt whose
// answer was lost is swept before the PKI is asked again.
func (s *Service) Renew(ctx context.Context, sig *protocol.Signed, req protocol.RenewRequest) (*protocol.Renewal, error) {
	if err := protocol.CheckSealKey(req.SealKey); err != nil {
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "seal_key: %v", err)
	}
	if err := checkCSR(req.CSR); err != nil {
		return nil, err
	}
	r := s.renewer()
	if r == nil {
		return nil, gatehouse.Errorf(gatehouse.ECONFLICT, "this server has no PKI backend, so it issues no certificates to renew")
	}
	var plan *renewPlan
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		plan, err = s.claimRenewal(ctx, tx, sig.Fingerprint, req)
		return err
	})
	if err != nil {
		if c := gatehouse.ErrorCode(err); c == gatehouse.EFORBIDDEN || c == gatehouse.EGONE {
			s.log.WarnContext(ctx, "certificate renewal refused", "fingerprint", sig.Fingerprint, "reason", gatehouse.ErrorMessage(err))
		}
		return nil, err
	}
	if plan.ready != nil {
		return plan.ready, nil
	}
	// The gateway hanging up must not abandon a certificate the PKI is
	// about to issue: finish and keep it, so the repeat finds it.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewCallTimeout)
	defer cancel()
	res, err := r.Renew(callCtx, &gatehouse.RenewInput{Device: plan.device, CSR: plan.csr, Lost: plan.lost,
		Keep: func(serial string) bool { return plan.keep[normalSerial(serial)] }})
	if err != nil {
		return nil, s.renewFailed(callCtx, plan, err)
	}
	return s.keepRenewal(callCtx, plan, res)
}

// claimRenewal checks the gateway may renew and records the attempt before
// anything is asked of the PKI.
func (s *Service) claimRenewal(ctx context.Context, tx *store.Tx, fp string, req protocol.RenewRequest) (*renewPlan, error) {
	d, k, err := renewableDevice(ctx, tx, fp)
	if err != nil {
		return nil, err
	}
	csr, err := renewCSR(k, req.CSR)
	if err != nil {
		return nil, err
	}
	certs, err := tx.Certificates(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	plan := &renewPlan{device: d, csr: csr, keep: map[string]bool{}, claim: store.Renewal{Fingerprint: fp}}
	for _, c := range certs {
		plan.keep[normalSerial(c.Serial)] = true
	}
	now := tx.Now()
	row, err := tx.Renewal(ctx, d.ID)
	switch {
	case gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND:
		row = nil
	case err != nil:
		return nil, err
	}
	abandoned := ""
	if row != nil {
		done, err := s.resumeRenewal(ctx, tx, plan, row, req, now)
		if err != nil || done {
			return plan, err
		}
		abandoned = row.Serial
	}
	current := currentCert(certs, abandoned)
	if current == nil {
		return nil, gatehouse.Errorf(gatehouse.ECONFLICT, "gatehouse keeps no certificate for gateway %s, so there is nothing to renew", d.Name)
	}
	if row == nil || abandoned != "" {
		if err := renewDue(current, now); err != nil {
			return nil, err
		}
	}
	started := now
	if !plan.lost.IsZero() {
		started = plan.lost // a later sweep must still reach back to the lost attempt
	}
	plan.claim = store.Renewal{DeviceID: d.ID, Fingerprint: fp, SealKey: req.SealKey, Replaces: current.Serial,
		StartedAt: started, ClaimedUntil: now.Add(renewClaim)}
	return plan, tx.PutRenewal(ctx, plan.claim)
}

// resumeRenewal handles a renewal the gateway asked for before: done says
// the plan is settled (an answer ready, or the lost attempt to sweep).
// Otherwise the waiting certificate was sealed to another key and has been
// given up.
func (s *Service) resumeRenewal(ctx context.Context, tx *store.Tx, plan *renewPlan, row *store.Renewal, req protocol.RenewRequest, now time.Time) (bool, error) {
	// A renewal asked for with a key retired since (a re-key) is given up
	// at once: its certificate is for the old key or sealed to it.
	sameKey := row.Fingerprint == plan.claim.Fingerprint
	switch {
	case row.Serial != "" && sameKey && (len(row.SealedKey) == 0 || string(row.SealKey) == string(req.SealKey)):
		plan.ready = renewalOf(plan.device, row)
		return true, nil
	case row.Serial != "" && sameKey && now.Before(row.StartedAt.Add(renewAbandonAfter)):
		at := row.StartedAt.Add(renewAbandonAfter)
		return false, gatehouse.Errorf(gatehouse.ERATELIMITED, "a renewed certificate sealed to another seal key waits for this gateway; it is given up and renewed anew from %s",
			at.Format(time.RFC3339)).WithRetryAfter(at.Sub(now))
	case row.Serial != "":
		if err := s.revokeLater(ctx, tx, plan.device.ID, row.Serial); err != nil {
			return false, err
		}
		why := "the gateway now asks with another seal key"
		if !sameKey {
			why = "the gateway now asks with another device key"
		}
		return false, tx.AddEvent(ctx, gatehouse.Event{DeviceID: plan.device.ID, Kind: "certificate_renewal_abandoned", Actor: "device",
			Detail: fmt.Sprintf("serial %s was never confirmed and %s; revoking it", row.Serial, why)})
	case now.Before(row.ClaimedUntil):
		return false, gatehouse.Errorf(gatehouse.EUNAVAILABLE, "a renewal of this gateway's certificate is in progress; try again shortly").
			WithRetryAfter(row.ClaimedUntil.Sub(now))
	}
	// An attempt asked the PKI and its answer never got here.
	plan.lost = row.StartedAt
	return false, nil
}

// renewableDevice refuses keys that are not a provisioned gateway's
// current key.
func renewableDevice(ctx context.Context, tx *store.Tx, fp string) (*gatehouse.Device, *gatehouse.DeviceKey, error) {
	k, err := tx.FindKey(ctx, fp)
	if err != nil {
		return nil, nil, unknownKey(err)
	}
	d, err := tx.Device(ctx, k.DeviceID)
	if err != nil {
		return nil, nil, err
	}
	if d.Fingerprint != fp {
		return nil, nil, gatehouse.Errorf(gatehouse.EFORBIDDEN, "this key is no longer gateway %s's key (it was re-keyed); a retired key renews nothing", d.Name)
	}
	switch d.State {
	case gatehouse.StateProvisioned, gatehouse.StateConfigured, gatehouse.StateStalled:
		return d, k, nil
	case gatehouse.StateDecommissioned:
		return nil, nil, refuseDecommissioned(ctx, tx, d)
	case gatehouse.StateDismissed:
		return nil, nil, gatehouse.Errorf(gatehouse.EFORBIDDEN, "an operator dismissed this gateway; it gets no certificate")
	}
	return nil, nil, gatehouse.Errorf(gatehouse.ECONFLICT, "gateway is %s; only a provisioned gateway renews its certificate", d.State)
}

// renewCSR is what the PKI signs in sign mode: the request's CSR, which
// must be for the certificate key the gateway enrolled with, else the
// enrolled one.
func renewCSR(k *gatehouse.DeviceKey, csr string) (string, error) {
	if csr == "" || k.CSR == "" {
		return cmpOr(csr, k.CSR), nil
	}
	enrolled, err1 := csrKey(k.CSR)
	asked, err2 := csrKey(csr)
	if err := errors.Join(err1, err2); err != nil {
		return "", gatehouse.Errorf(gatehouse.EINVALID, "csr: %v", err)
	}
	if !enrolled.(interface{ Equal(crypto.PublicKey) bool }).Equal(asked) {
		return "", gatehouse.Errorf(gatehouse.EFORBIDDEN, "csr is for another key than the certificate key this gateway enrolled with")
	}
	return csr, nil
}

func csrKey(csrPEM string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(csrPEM))
	if block == nil {
		return nil, errors.New("not PEM")
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	return req.PublicKey, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// currentCert is the newest kept certificate not revoked, leaving out one
// given up.
func currentCert(certs []gatehouse.DeviceCert, except string) *gatehouse.DeviceCert {
	for i := range certs { // newest first
		if certs[i].RevokedAt == nil && certs[i].Serial != except {
			return &certs[i]
		}
	}
	return nil
}

// renewDue refuses a renewal before half the certificate's lifetime.
func renewDue(c *gatehouse.DeviceCert, now time.Time) error {
	life := c.NotAfter.Sub(c.NotBefore)
	opens := c.NotBefore.Add(time.Duration(float64(life) * renewFrom))
	if now.Before(opens) {
		return gatehouse.Errorf(gatehouse.ECONFLICT, "too early: certificate %s is valid until %s and may be renewed from %s (half its lifetime) on",
			c.Serial, c.NotAfter.Format(time.RFC3339), opens.Format(time.RFC3339))
	}
	return nil
}

// renewFailed releases the claim, so the next request sweeps and asks
// again, and puts the reason on the timeline for operators; the gateway
// only learns to come back later.
func (s *Service) renewFailed(ctx context.Context, plan *renewPlan, cause error) error {
	s.log.Warn("certificate renewal failed", "device", plan.device.ID, "err", cause)
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		row, err := tx.Renewal(ctx, plan.device.ID)
		if err != nil || !sameClaim(row, plan.claim) {
			return err
		}
		row.ClaimedUntil = tx.Now()
		if err := tx.PutRenewal(ctx, *row); err != nil {
			return err
		}
		return tx.AddEvent(ctx, gatehouse.Event{DeviceID: plan.device.ID, Kind: "certificate_renewal_failed", Actor: "device", Detail: cause.Error()})
	})
	if err != nil {
		return fmt.Errorf("record failed renewal (%v): %w", cause, err)
	}
	s.notify.Publish(plan.device.ID)
	return gatehouse.Errorf(gatehouse.EUNAVAILABLE, "the PKI did not renew the certificate (operators see why on the gateway's timeline); try again later").
		WithRetryAfter(renewFailedRetry)
}

func sameClaim(row *store.Renewal, claim store.Renewal) bool {
	return row.Serial == "" && row.StartedAt.Equal(claim.StartedAt) && row.ClaimedUntil.Equal(claim.ClaimedUntil)
}

// keepRenewal stores the new certificate with the outstanding renewal and
// among the gateway's kept ones, in one transaction. A gateway that was
// decommissioned or re-keyed meanwhile gets nothing, and the certificate is
// revoked.
func (s *Service) keepRenewal(ctx context.Context, plan *renewPlan, res *gatehouse.StepResult) (*protocol.Renewal, error) {
	serial, certPEM := res.Output[gatehouse.OutSerial], res.Output[gatehouse.OutCertificate]
	c, err := gatehouse.ParseDeviceCert(serial, certPEM)
	if err != nil {
		return nil, s.renewFailed(ctx, plan, err)
	}
	sealed, err := seal(plan.claim.SealKey, res.Secrets)
	if err != nil {
		return nil, s.renewFailed(ctx, plan, err)
	}
	var out *protocol.Renewal
	var refusal error
	id := plan.device.ID
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		c.DeviceID, c.Fingerprint, c.Origin = id, plan.claim.Fingerprint, gatehouse.CertFromRenewal
		if err := tx.AddCertificate(ctx, c); err != nil {
			return err
		}
		row, err := tx.Renewal(ctx, id)
		if err == nil && !sameClaim(row, plan.claim) {
			err = gatehouse.Errorf(gatehouse.ECONFLICT, "another request took over this renewal")
		}
		d, derr := tx.Device(ctx, id)
		if err == nil && derr == nil {
			_, _, refusal = renewableDevice(ctx, tx, plan.claim.Fingerprint)
			if refusal == nil {
				out, err = s.storeIssued(ctx, tx, d, row, c, issued{cert: certPEM, chain: res.Output[gatehouse.OutCAChain], key: sealed[protocol.FieldPrivateKey]})
				return err
			}
		}
		// Nobody will confirm this certificate: it must not stay valid.
		if err == nil {
			if err := tx.DeleteRenewal(ctx, id); err != nil {
				return err
			}
		}
		refusal = errors.Join(refusal, err, derr)
		return s.revokeLater(ctx, tx, id, c.Serial)
	})
	if err != nil {
		return nil, err
	}
	s.notify.Publish(id)
	if out == nil {
		return nil, refusal
	}
	return out, nil
}

// issued is what the PKI answered, the key already sealed.
type issued struct {
	cert, chain string
	key         []byte
}

// storeIssued puts the new certificate with the outstanding renewal, so a
// repeated request is answered with it, and on the timeline.
func (s *Service) storeIssued(ctx context.Context, tx *store.Tx, d *gatehouse.Device, row *store.Renewal, c gatehouse.DeviceCert, is issued) (*protocol.Renewal, error) {
	row.Serial, row.Certificate, row.CAChain, row.SealedKey = c.Serial, is.cert, is.chain, is.key
	row.ClaimedUntil = tx.Now()
	if err := tx.PutRenewal(ctx, *row); err != nil {
		return nil, err
	}
	detail := fmt.Sprintf("serial %s, valid until %s, replaces %s; waiting for the gateway to confirm it wrote it",
		c.Serial, c.NotAfter.Format(time.RFC3339), row.Replaces)
	if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: d.ID, Kind: "certificate_renewal_issued", Actor: "device", Detail: detail}); err != nil {
		return nil, err
	}
	return renewalOf(d, row), nil
}

func renewalOf(d *gatehouse.Device, row *store.Renewal) *protocol.Renewal {
	r := &protocol.Renewal{Name: d.Name, Serial: row.Serial, Replaces: row.Replaces, Certificate: row.Certificate, CAChain: row.CAChain}
	if c, err := gatehouse.ParseDeviceCert(row.Serial, row.Certificate); err == nil {
		r.NotAfter = c.NotAfter
	}
	if len(row.SealedKey) > 0 {
		r.Sealed = map[string][]byte{protocol.FieldPrivateKey: row.SealedKey}
	}
	return r
}

// RenewAck records that the gateway wrote its renewed certificate: the
// renewal is done, the certificates it replaced are revoked by durable
// jobs, and the sealed key is deleted. Confirming again changes nothing.
func (s *Service) RenewAck(ctx context.Context, sig *protocol.Signed, req protocol.RenewAckRequest) error {
	serial := normalSerial(req.Serial)
	if serial == "" {
		return gatehouse.Errorf(gatehouse.EINVALID, "serial: the renewed certificate's serial is required")
	}
	var id string
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		k, err := tx.FindKey(ctx, sig.Fingerprint)
		if err != nil {
			return unknownKey(err)
		}
		id = k.DeviceID
		return s.renewAckTx(ctx, tx, id, sig.Fingerprint, serial)
	})
	if err == nil {
		s.notify.Publish(id)
	}
	return err
}

func (s *Service) renewAckTx(ctx context.Context, tx *store.Tx, id, fp, serial string) error {
	certs, err := tx.Certificates(ctx, id)
	if err != nil {
		return err
	}
	row, err := tx.Renewal(ctx, id)
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		for _, c := range certs {
			if normalSerial(c.Serial) == serial && c.Origin == gatehouse.CertFromRenewal {
				return nil // confirmed before
			}
		}
		return gatehouse.Errorf(gatehouse.ENOTFOUND, "no renewed certificate %s waits for confirmation", serial)
	}
	if err != nil {
		return err
	}
	switch {
	case row.Fingerprint != fp:
		return gatehouse.Errorf(gatehouse.EFORBIDDEN, "the renewal was asked for with another key")
	case normalSerial(row.Serial) != serial:
		return gatehouse.Errorf(gatehouse.ECONFLICT, "the renewed certificate waiting is %q, not %s", row.Serial, serial)
	}
	var revoking []string
	for _, c := range certs {
		if c.RevokedAt == nil && normalSerial(c.Serial) != serial {
			if err := s.revokeLater(ctx, tx, id, c.Serial); err != nil {
				return err
			}
			revoking = append(revoking, c.Serial)
		}
	}
	if err := s.recordCurrentCert(ctx, tx, id, row); err != nil {
		return err
	}
	if err := tx.DeleteRenewal(ctx, id); err != nil {
		return err
	}
	detail := fmt.Sprintf("serial %s written by the gateway", row.Serial)
	if len(revoking) > 0 {
		detail += "; revoking " + strings.Join(revoking, ", ")
	}
	return tx.AddEvent(ctx, gatehouse.Event{DeviceID: id, Kind: "certificate_renewed", Actor: "device", Detail: detail})
}

// recordCurrentCert makes the PKI step's output name the renewed
// certificate, so what reads it (the device view, decommissioning) sees
// the one in force.
func (s *Service) recordCurrentCert(ctx context.Context, tx *store.Tx, id string, row *store.Renewal) error {
	err := tx.MergeStepOutput(ctx, id, gatehouse.StepVault, map[string]string{
		gatehouse.OutSerial: row.Serial, gatehouse.OutCertificate: row.Certificate, gatehouse.OutCAChain: row.CAChain})
	if gatehouse.ErrorCode(err) == gatehouse.ENOTFOUND {
		return nil
	}
	return err
}

// normalSerial spells a serial the way Vault lists it: colon-separated
// lower-case hex.
func normalSerial(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", ":")
}
