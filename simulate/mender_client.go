package simulate

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// MenderClientOptions configure NewMenderClient.
type MenderClientOptions struct {
	// ServerURL is the Mender server's base URL (a MenderServer's URL).
	ServerURL string
	// Key is the device key: *rsa.PrivateKey, *ecdsa.PrivateKey (P-256) or
	// ed25519.PrivateKey, or any crypto.Signer with such a public key.
	Key crypto.Signer
	// Identity is what the identity script prints, e.g. {"mac": "02:..."}.
	Identity map[string]string
	// TenantToken is sent when set, as hosted Mender needs it.
	TenantToken string
	// RetryInterval is how long the client waits after a refused or failed
	// attempt (mender.conf RetryPollIntervalSeconds); default 1 s.
	RetryInterval time.Duration
	// HTTP sends the requests; nil means a client with a 10 s timeout.
	HTTP *http.Client
}

// MenderClient is a gateway's Mender client (mender-client 3.x, mender-authd
// 4.x/5.x) as far as authentication goes: from boot on it asks
// POST /api/devices/v1/authentication/auth_requests for a JWT, with the body
// and X-MEN-Signature the real client sends (mender src/mender-auth/api/auth/
// auth.cpp FetchJWTToken, TryAuthenticate; identity JSON as in
// client_shared/identity_parser DumpIdentityData), and waits RetryInterval
// between attempts until it is accepted (3.x state.go authorizeWaitState).
type MenderClient struct {
	opts   MenderClientOptions
	body   []byte
	sig    string
	ready  chan struct{} // closed once a token arrived
	notify chan struct{} // closed and replaced after every attempt

	mu       sync.Mutex
	token    string
	attempts int
	status   int // of the last answer; 0 after a transport error
}

// NewMenderClient prepares a client; Run starts it.
func NewMenderClient(opts MenderClientOptions) (*MenderClient, error) {
	if opts.ServerURL == "" || opts.Key == nil || len(opts.Identity) == 0 {
		return nil, errors.New("simulate: mender client needs a ServerURL, a Key and an Identity")
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = time.Second
	}
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	body, err := menderAuthBody(opts)
	if err != nil {
		return nil, err
	}
	sig, err := signMenderAuth(opts.Key, body)
	if err != nil {
		return nil, err
	}
	return &MenderClient{opts: opts, body: body, sig: sig, ready: make(chan struct{}), notify: make(chan struct{})}, nil
}

// menderAuthBody is the AuthRequest: id_data is the identity as a JSON
// string with sorted keys, pubkey the PKIX PEM of the device key.
func menderAuthBody(opts MenderClientOptions) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(opts.Key.Public())
	if err != nil {
		return nil, fmt.Errorf("simulate: mender client key: %w", err)
	}
	id, err := menderIdentityJSON(opts.Identity)
	if err != nil {
		return nil, err
	}
	return json.Marshal(menderAuthReq{
		IDData:      id,
		TenantToken: opts.TenantToken,
		Pubkey:      string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
	})
}

// menderIdentityJSON writes identity compactly with sorted keys and without
// Go's HTML escaping, as DumpIdentityData does.
func menderIdentityJSON(identity map[string]string) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(identity); err != nil {
		return "", fmt.Errorf("simulate: mender client identity: %w", err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// signMenderAuth signs the body the way deviceauth verifies it: RSA
// PKCS#1 v1.5 and ECDSA (ASN.1) over SHA-256 of the body, Ed25519 over the
// body, base64.
func signMenderAuth(key crypto.Signer, body []byte) (string, error) {
	digest := sha256.Sum256(body)
	var sig []byte
	var err error
	switch key.Public().(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		sig, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
	case ed25519.PublicKey:
		sig, err = key.Sign(rand.Reader, body, crypto.Hash(0))
	default:
		return "", fmt.Errorf("simulate: mender client key type %T is not one Mender takes", key.Public())
	}
	if err != nil {
		return "", fmt.Errorf("simulate: mender client sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Run asks for a JWT until it gets one (then returns nil) or ctx ends. The
// real client goes on to poll for updates with the token; this one stops.
func (c *MenderClient) Run(ctx context.Context) error {
	for {
		if token, ok := c.attempt(ctx); ok {
			c.accept(token)
			return nil
		}
		t := time.NewTimer(c.opts.RetryInterval)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// attempt sends one auth request; only a 200 carries a token.
func (c *MenderClient) attempt(ctx context.Context) (string, bool) {
	status, body := c.send(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts++
	c.status = status
	close(c.notify)
	c.notify = make(chan struct{})
	token := strings.TrimSpace(string(body))
	return token, status == http.StatusOK && token != ""
}

func (c *MenderClient) send(ctx context.Context) (int, []byte) {
	url := strings.TrimRight(c.opts.ServerURL, "/") + MenderAuthRequestsPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(c.body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-MEN-Signature", c.sig)
	// mender-auth sends this literal; deviceauth ignores it.
	req.Header.Set("Authorization", "API_KEY")
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, body
}

func (c *MenderClient) accept(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" { // a second Run must not close ready again
		close(c.ready)
	}
	c.token = token
}

// Token is the device JWT, "" until the server accepted the device.
func (c *MenderClient) Token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// Accepted is closed once the client holds a token.
func (c *MenderClient) Accepted() <-chan struct{} { return c.ready }

// WaitAccepted waits until the client holds a token or ctx ends.
func (c *MenderClient) WaitAccepted(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Attempts counts the auth requests answered (or failed) so far.
func (c *MenderClient) Attempts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts
}

// LastStatus is the HTTP status of the last answer, 0 after a transport
// error or before the first.
func (c *MenderClient) LastStatus() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// WaitAttempts waits until at least n auth requests have been answered (or
// failed), so a test can act between attempts without sleeping.
func (c *MenderClient) WaitAttempts(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		done, next := c.attempts >= n, c.notify
		c.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
