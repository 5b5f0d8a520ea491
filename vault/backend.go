package vault

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/rest"
)

// Backend gets each gateway its certificate from a Vault/OpenBao PKI.
//
// Vault's issue and sign are not idempotent: every call makes a new,
// valid certificate. So before calling, the step records that it is about
// to; a later attempt that finds the record (the answer was lost, or the
// process died before committing it) lists what the PKI issued for the
// name since then and revokes it before asking again. The promise: at
// most one valid certificate per gateway once its step has succeeded.
type Backend struct {
	pki  gatehouse.PKI
	sign bool
	role string
	now  func() time.Time
}

var (
	_ gatehouse.Provisioner    = (*Backend)(nil)
	_ gatehouse.Decommissioner = (*Backend)(nil)
)

// recIssuing records when an attempt asked the PKI for a certificate whose
// answer gatehouse has not committed.
const recIssuing = "vault_issuing_since"

// sweepMargin reaches back before the recorded time: Vault backdates
// not_before (30 s by default) and its clock may differ from ours.
const sweepMargin = 5 * time.Minute

// NewBackend gets certificates from pki under role (named in messages):
// signed for the agent's own key with sign, else issued with a new key.
func NewBackend(pki gatehouse.PKI, sign bool, role string) *Backend {
	return &Backend{pki: pki, sign: sign, role: role, now: time.Now}
}

// Name implements gatehouse.Backend.
func (b *Backend) Name() string { return "vault" }

// Step implements gatehouse.Provisioner.
func (b *Backend) Step() gatehouse.StepName { return gatehouse.StepVault }

// NameTaken is always free: a PKI does not reserve names, and listing the
// whole store at every approval would not scale.
func (b *Backend) NameTaken(context.Context, string) ([]string, error) { return nil, nil }

// Check proves the credentials work and, where the policy allows, that the
// role suits the mode.
func (b *Backend) Check(ctx context.Context) ([]string, error) {
	switch c := b.pki.(type) {
	case interface {
		Check(context.Context) ([]string, error)
	}:
		return c.Check(ctx)
	case interface{ Check(context.Context) error }:
		return nil, c.Check(ctx)
	}
	return nil, nil
}

// Provision revokes what a lost attempt may have issued, records this
// attempt, gets the certificate and checks it is the gateway's.
func (b *Backend) Provision(ctx context.Context, in *gatehouse.StepInput) (*gatehouse.StepResult, error) {
	name := in.Device.Name
	if since := in.Recorded[recIssuing]; since != "" {
		if err := b.revokeLost(ctx, name, since); err != nil {
			return nil, err
		}
	}
	if err := in.Record(ctx, map[string]string{recIssuing: b.now().UTC().Format(time.RFC3339Nano)}); err != nil {
		return nil, err
	}
	c, want, err := b.certificate(ctx, in)
	if err != nil {
		// Nothing issued, so nothing for the next attempt to sweep: without
		// this, every retry through an outage listed the whole PKI and told
		// the operator an answer was lost when the connection was refused.
		if refused(err) || rest.DidNotAct(err) {
			err = errors.Join(err, in.Record(ctx, map[string]string{recIssuing: ""}))
		}
		return nil, b.explain(err)
	}
	if err := b.verify(c, name, want); err != nil {
		// A wrong certificate must not stay valid: revoke it now.
		if rerr := b.pki.Revoke(ctx, c.Serial); rerr == nil {
			err = errors.Join(err, in.Record(ctx, map[string]string{recIssuing: ""}))
		}
		return nil, err
	}
	return b.result(c), nil
}

// revokeLost revokes every certificate for name issued since an attempt
// whose answer never reached us: none of them is recorded as the gateway's.
func (b *Backend) revokeLost(ctx context.Context, name, since string) error {
	t, err := time.Parse(time.RFC3339Nano, since)
	if err != nil {
		return fmt.Errorf("vault: recorded attempt time %q: %w", since, err)
	}
	certs, err := b.pki.Issued(ctx, name, t.Add(-sweepMargin))
	if err != nil {
		return fmt.Errorf("vault: an earlier attempt's answer was lost, and listing what it may have issued failed: %w", err)
	}
	for _, c := range certs {
		if err := b.pki.Revoke(ctx, c.Serial); err != nil && !errors.Is(err, gatehouse.ErrBackendNotFound) {
			return fmt.Errorf("vault: revoke certificate %s left by a lost attempt: %w", c.Serial, err)
		}
	}
	return nil
}

// certificate asks the PKI and returns the key the certificate must hold.
func (b *Backend) certificate(ctx context.Context, in *gatehouse.StepInput) (gatehouse.Certificate, crypto.PublicKey, error) {
	name := in.Device.Name
	if !b.sign {
		c, err := b.pki.Issue(ctx, name)
		if err != nil {
			return c, nil, err
		}
		pub, err := PublicKeyOf(c.PrivateKeyPEM)
		return c, pub, err
	}
	if in.Key.CSR == "" {
		return gatehouse.Certificate{}, nil, errors.New("vault: sign mode needs the agent's CSR, and this gateway's agent sent none; upgrade gatehouse-agent")
	}
	want, err := CSRPublicKey(in.Key.CSR)
	if err != nil {
		return gatehouse.Certificate{}, nil, err
	}
	c, err := b.pki.Sign(ctx, name, in.Key.CSR)
	return c, want, err
}

// refused says the PKI answered and issued nothing (a 4xx other than a
// timeout or throttling), so there is nothing to revoke later.
func refused(err error) bool {
	s := rest.StatusOf(err)
	return s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests
}

// explain adds the role setting to change to the refusals that need one.
func (b *Backend) explain(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "requires keys of type"):
		return fmt.Errorf("%w: the agent's CSR has an ECDSA P-256 key; set key_type=ec key_bits=256 (or key_type=any) on role %s", err, b.role)
	case strings.Contains(msg, `key type "any" not allowed`):
		return fmt.Errorf("%w: gatehouse's issue requests name no key type; set key_type=ec key_bits=256 on role %s", err, b.role)
	case strings.Contains(msg, "not allowed by this role"):
		return fmt.Errorf("%w: allow gateway names on role %s (allow_any_name=true, or allowed_domains with allow_bare_domains)", err, b.role)
	}
	return err
}

// verify checks the certificate names the gateway and holds the expected
// key: with the default use_csr_common_name=true OpenBao signs the CSR's
// own name, whatever name was asked for, and answers success.
func (b *Backend) verify(c gatehouse.Certificate, name string, want crypto.PublicKey) error {
	err := Verify(c, name, want)
	var ve *VerifyError
	if errors.As(err, &ve) {
		ve.Role = b.role
		return fmt.Errorf("%w (certificate %s revoked)", ve, c.Serial)
	}
	return err
}

func (b *Backend) result(c gatehouse.Certificate) *gatehouse.StepResult {
	out := map[string]string{
		gatehouse.OutCertificate: c.CertificatePEM,
		gatehouse.OutCAChain:     c.CAChainPEM,
		gatehouse.OutSerial:      c.Serial,
	}
	if len(c.Warnings) > 0 {
		out["vault_warnings"] = strings.Join(c.Warnings, "; ")
	}
	res := &gatehouse.StepResult{Output: out}
	if c.PrivateKeyPEM != "" {
		res.Secrets = map[string][]byte{protocol.FieldPrivateKey: []byte(c.PrivateKeyPEM)}
	}
	return res
}

// Decommission revokes the gateway's certificate, every earlier one
// gatehouse kept and has not revoked yet, and what an attempt whose answer
// was lost may have issued. Revoking twice succeeds, so a repeat is safe.
func (b *Backend) Decommission(ctx context.Context, in *gatehouse.StepInput, dryRun bool) ([]gatehouse.Removal, error) {
	serials, err := b.toRevoke(ctx, in)
	if err != nil {
		return nil, err
	}
	var out []gatehouse.Removal
	for _, serial := range serials {
		r, err := gatehouse.Remove(b.Name(), "certificate "+serial, gatehouse.RemovalRevoked, dryRun,
			func() error { return b.pki.Revoke(ctx, serial) })
		if err != nil {
			return nil, err
		}
		out = append(out, r...)
	}
	return out, nil
}

// toRevoke lists the serials a decommission revokes, each once.
func (b *Backend) toRevoke(ctx context.Context, in *gatehouse.StepInput) ([]string, error) {
	serials := append([]string{in.Recorded[gatehouse.OutSerial]}, in.Serials...)
	if since := in.Recorded[recIssuing]; since != "" && in.Device.Name != "" {
		t, err := time.Parse(time.RFC3339Nano, since)
		if err != nil {
			return nil, fmt.Errorf("vault: recorded attempt time %q: %w", since, err)
		}
		lost, err := b.pki.Issued(ctx, in.Device.Name, t.Add(-sweepMargin))
		if err != nil {
			return nil, fmt.Errorf("vault: list what an attempt whose answer was lost may have issued: %w", err)
		}
		for _, c := range lost {
			serials = append(serials, c.Serial)
		}
	}
	var out []string
	seen := map[string]bool{"": true}
	for _, s := range serials {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

var _ gatehouse.FixedName = (*Backend)(nil)

// FixedNameReason implements gatehouse.FixedName: the certificate names the
// gateway, and a second valid certificate under a name gatehouse gave up
// would let another gateway be taken for this one.
func (b *Backend) FixedNameReason() string {
	return "the gateway's certificate carries its name as common name and stays valid under it; decommission the gateway and approve it again under the new name"
}
