// Package vault issues, signs and revokes gateway certificates with a
// HashiCorp Vault or OpenBao PKI secrets engine over its HTTP API, logging
// in with a token, AppRole or a Kubernetes service account.
//
// A role as OpenBao creates it by default does not work for gatehouse: it
// refuses bare names such as "gw-01", wants RSA keys, and signs the name in
// the CSR rather than the approved one. The role gatehouse recommends:
//
//	bao write pki/roles/gatehouse key_type=ec key_bits=256 allow_any_name=true \
//	    use_csr_common_name=false use_csr_sans=false max_ttl=8760h
//
// The policy gatehouse's token needs (read on the role only for Check; list
// on certs/detailed, or certs on HashiCorp Vault, to find what a step
// issued when its answer was lost):
//
//	path "pki/issue/gatehouse"  { capabilities = ["update"] }
//	path "pki/sign/gatehouse"   { capabilities = ["update"] }
//	path "pki/revoke"           { capabilities = ["update"] }
//	path "pki/roles/gatehouse"  { capabilities = ["read"] }
//	path "pki/certs/detailed"   { capabilities = ["list"] }
//	path "pki/certs"            { capabilities = ["list"] }
//
// Client.Check reads the role and says what does not fit; Verify checks a
// certificate that came back.
package vault

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"gatehouse"
	"gatehouse/rest"
)

var _ gatehouse.PKI = (*Client)(nil)

// Client talks to one PKI mount. It is safe for concurrent use.
type Client struct {
	cfg   Config
	api   *rest.Client
	login *rest.Client // the same without retries: logins back off in auth
	auth  *auth
	now   func() time.Time

	mu       sync.Mutex
	backdate time.Duration // the role's not_before_duration, once known
}

// New returns a client for a valid configuration. It does not contact
// Vault; call Check for that.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, now: time.Now}
	c.api = &rest.Client{
		Service:   "vault",
		BaseURL:   cfg.Addr,
		HTTP:      cfg.HTTP,
		Timeout:   cfg.Timeout,
		UserAgent: cfg.UserAgent,
		Retries:   cfg.Retries,
		Logger:    cfg.Logger,
	}
	login := *c.api
	login.Retries = -1
	c.login = &login
	c.auth = newAuth(c, cfg)
	return c, nil
}

// certRequest is the body of issue and sign.
type certRequest struct {
	CommonName       string `json:"common_name"`
	CSR              string `json:"csr,omitempty"`
	TTL              string `json:"ttl,omitempty"`
	Format           string `json:"format"`
	PrivateKeyFormat string `json:"private_key_format,omitempty"`
}

// certAnswer is Vault's answer to issue and sign: the data and what Vault
// had to say about the request, such as a ttl capped at the role's max_ttl.
type certAnswer struct {
	Data     certData `json:"data"`
	Warnings []string `json:"warnings"`
}

// Issue has Vault generate a key pair and certificate for commonName. The
// key comes as PKCS#8 PEM. Like Vault's endpoint it is not idempotent.
func (c *Client) Issue(ctx context.Context, commonName string) (gatehouse.Certificate, error) {
	req := certRequest{CommonName: commonName, TTL: c.cfg.TTL, Format: "pem", PrivateKeyFormat: "pkcs8"}
	var out certAnswer
	if err := c.call(ctx, http.MethodPost, c.pkiPath("issue/"+c.cfg.Role), req, &out); err != nil {
		return gatehouse.Certificate{}, err
	}
	return out.certificate(true)
}

// Sign has Vault sign csrPEM for commonName; the private key never leaves
// the device. The role must not take the name from the CSR (see package doc).
func (c *Client) Sign(ctx context.Context, commonName, csrPEM string) (gatehouse.Certificate, error) {
	if block, _ := pem.Decode([]byte(csrPEM)); block == nil || !strings.HasSuffix(block.Type, "CERTIFICATE REQUEST") {
		return gatehouse.Certificate{}, errors.New("vault: sign: csr is not a PEM CERTIFICATE REQUEST")
	}
	req := certRequest{CommonName: commonName, CSR: csrPEM, TTL: c.cfg.TTL, Format: "pem"}
	var out certAnswer
	if err := c.call(ctx, http.MethodPost, c.pkiPath("sign/"+c.cfg.Role), req, &out); err != nil {
		return gatehouse.Certificate{}, err
	}
	return out.certificate(false)
}

// serialPattern is a serial as Vault prints it; Vault also takes hyphens.
var serialPattern = regexp.MustCompile(`^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2})*$`)

// Revoke revokes a certificate by serial. Revoking twice succeeds, as in
// Vault. Vault answers an unknown serial with a 400 ("certificate with
// serial ... not found"); that error also wraps gatehouse.ErrBackendNotFound
// so callers can treat it as done.
func (c *Client) Revoke(ctx context.Context, serial string) error {
	if !serialPattern.MatchString(serial) {
		return fmt.Errorf("vault: revoke: serial %q is not colon-separated hex", serial)
	}
	body := map[string]string{"serial_number": serial}
	err := c.call(ctx, http.MethodPost, c.pkiPath("revoke"), body, nil)
	if rest.StatusOf(err) == http.StatusBadRequest && strings.Contains(messageOf(err), "not found") {
		return notFoundError{err}
	}
	return err
}

func (c *Client) pkiPath(op string) string {
	return "/v1/" + c.cfg.Mount + "/" + op
}

// call sends an authenticated request. A 403 means Vault no longer accepts
// the token (expired or revoked early): with a login method the client logs
// in again once and retries, since the request was refused before any effect.
func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	for retried := false; ; retried = true {
		tok, err := c.auth.token(ctx)
		if err != nil {
			return err
		}
		err = c.send(ctx, method, path, tok, body, out)
		if rest.StatusOf(err) != http.StatusForbidden {
			return err
		}
		if retried || !c.auth.canLogin() {
			return c.forbidden(err, retried)
		}
		c.auth.invalidate(tok)
	}
}

func (c *Client) forbidden(err error, retried bool) error {
	if retried {
		return fmt.Errorf("%w (refused again after a fresh login: check the policies of the Vault role)", err)
	}
	return fmt.Errorf("%w (check that the Vault token is valid and its policy allows this path)", err)
}

// send is one call through rest, which retries 429s and 5xx.
func (c *Client) send(ctx context.Context, method, path, token string, body, out any) error {
	return c.do(ctx, c.api, method, path, token, body, nil, out)
}

// sendOnce is a login: one attempt, no token. The secrets in its body are
// hidden from the error before rest cuts the message short.
func (c *Client) sendOnce(ctx context.Context, method, path string, body any, secrets []string, out any) error {
	return c.do(ctx, c.login, method, path, "", body, secrets, out)
}

func (c *Client) do(ctx context.Context, api *rest.Client, method, path, token string, body any, secrets []string, out any) error {
	h := map[string]string{}
	if token != "" {
		h["X-Vault-Token"] = token
	}
	if c.cfg.Namespace != "" {
		h["X-Vault-Namespace"] = c.cfg.Namespace
	}
	resp, err := api.Do(ctx, rest.Request{Method: method, Path: path, Body: body, Header: h, Unsafe: c.issues(path), Secrets: secrets})
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := resp.JSON(out); err != nil {
		return fmt.Errorf("vault: %s %s: %w", method, path, err)
	}
	return nil
}

// issues says whether a call makes a certificate: each one that reaches
// Vault makes another, so the transport must not repeat it on a timeout or
// a dropped connection. The Vault step revokes what such a call issued.
func (c *Client) issues(path string) bool {
	return strings.HasPrefix(path, c.pkiPath("issue/")) || strings.HasPrefix(path, c.pkiPath("sign/"))
}

// certData is the "data" of an issue or sign answer.
type certData struct {
	Certificate  string   `json:"certificate"`
	IssuingCA    string   `json:"issuing_ca"`
	CAChain      []string `json:"ca_chain"`
	PrivateKey   string   `json:"private_key"`
	SerialNumber string   `json:"serial_number"`
}

func (a certAnswer) certificate(withKey bool) (gatehouse.Certificate, error) {
	c, err := a.Data.certificate(withKey)
	if err != nil {
		return c, err
	}
	c.Warnings = a.Warnings
	return c, nil
}

// certificate checks the answer is complete. Vault's PEM strings end
// without a newline; each field gets exactly one so the files written on
// the gateway are well-formed text.
func (d certData) certificate(withKey bool) (gatehouse.Certificate, error) {
	switch {
	case d.Certificate == "" || d.SerialNumber == "":
		return gatehouse.Certificate{}, errors.New("vault: answer lacks certificate or serial_number")
	case withKey && d.PrivateKey == "":
		return gatehouse.Certificate{}, errors.New("vault: issue answer lacks private_key")
	}
	c := gatehouse.Certificate{
		Serial:         d.SerialNumber,
		CertificatePEM: pemText(d.Certificate),
		CAChainPEM:     pemText(d.IssuingCA),
	}
	if len(d.CAChain) > 0 {
		c.CAChainPEM = pemText(strings.Join(trimAll(d.CAChain), "\n"))
	}
	if withKey {
		c.PrivateKeyPEM = pemText(d.PrivateKey)
	}
	return c, nil
}

func pemText(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return ""
	}
	return s + "\n"
}

func trimAll(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// notFoundError is Vault's "not found" 400 that also matches
// gatehouse.ErrBackendNotFound.
type notFoundError struct{ error }

func (e notFoundError) Unwrap() []error { return []error{e.error, gatehouse.ErrBackendNotFound} }

func messageOf(err error) string {
	var re *rest.Error
	if errors.As(err, &re) {
		return re.Message
	}
	return ""
}
