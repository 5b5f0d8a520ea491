package simulate

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"
)

// vaultToken is one token the simulated Vault knows.
type vaultToken struct {
	accessor  string
	path      string // the login path that created it, as Vault reports it
	policies  []string
	created   time.Time
	expires   time.Time // zero: never (the root token)
	maxExpiry time.Time // zero: renewals are not capped
	renewable bool
	root      bool        // may do anything
	policy    VaultPolicy // what else it may do, beyond Vault's default policy
}

// allows is the token's ACL check for op on path.
func (t *vaultToken) allows(path, op string) bool {
	return t.root || vaultDefaultPolicy.allows(path, op) || t.policy.allows(path, op)
}

// vaultAuth holds the credentials the server accepts and the tokens it has
// handed out.
type vaultAuth struct {
	opts VaultServerOptions
	root *vaultToken

	mu       sync.Mutex
	tokens   map[string]*vaultToken
	logins   int
	renewals int
}

func newVaultAuth(opts VaultServerOptions) *vaultAuth {
	a := &vaultAuth{opts: opts, tokens: map[string]*vaultToken{}}
	if opts.RootToken != "" {
		a.root = &vaultToken{accessor: randomVaultID(12), path: "auth/token/root", policies: []string{"root"}, created: opts.Now(), root: true}
	}
	for tok, policy := range opts.Tokens {
		// Static tokens never expire: their expiry is far beyond any test.
		a.tokens[tok] = &vaultToken{accessor: randomVaultID(12), path: "auth/token/create", policies: []string{"default", "limited"},
			created: opts.Now(), expires: opts.Now().Add(100 * 365 * 24 * time.Hour), policy: policy}
	}
	return a
}

// tokenOf reads the token the way Vault does: X-Vault-Token, or else an
// Authorization bearer token.
func tokenOf(r *http.Request) string {
	if t := r.Header.Get("X-Vault-Token"); t != "" {
		return t
	}
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(t)
	}
	return ""
}

// lookup returns a live token's record, or nil for missing, unknown and
// expired tokens alike: Vault answers all of them "permission denied".
func (a *vaultAuth) lookup(tok string) *vaultToken {
	if tok == "" {
		return nil
	}
	if a.root != nil && vaultEqual(tok, a.opts.RootToken) {
		return a.root
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tokens[tok]
	if t == nil || !a.opts.Now().Before(t.expires) {
		return nil
	}
	return t
}

// login creates a renewable token that expires after TokenTTL.
func (a *vaultAuth) login(path string) (string, *vaultToken) {
	now := a.opts.Now()
	t := &vaultToken{
		accessor:  randomVaultID(12),
		path:      path,
		policies:  []string{"default", "gatehouse"},
		policy:    a.opts.TokenPolicy,
		created:   now,
		expires:   now.Add(a.opts.TokenTTL),
		renewable: true,
	}
	if a.opts.TokenMaxTTL > 0 {
		t.maxExpiry = now.Add(a.opts.TokenMaxTTL)
		t.expires = minTime(t.expires, t.maxExpiry)
	}
	tok := "hvs." + randomVaultID(24)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens[tok] = t
	a.logins++
	return tok, t
}

// renew extends a token by TokenTTL, never past its max TTL, and reports
// whether the max TTL cut the extension short.
func (a *vaultAuth) renew(t *vaultToken) (capped bool) {
	now := a.opts.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	t.expires = now.Add(a.opts.TokenTTL)
	if !t.maxExpiry.IsZero() && t.maxExpiry.Before(t.expires) {
		t.expires, capped = t.maxExpiry, true
	}
	a.renewals++
	return capped
}

// ttl is what is left of a token's lease, in whole seconds as Vault counts.
func (a *vaultAuth) ttl(t *vaultToken) int64 {
	if t.expires.IsZero() {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(max(t.expires.Sub(a.opts.Now()), 0) / time.Second)
}

func (a *vaultAuth) expireAll() {
	now := a.opts.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, t := range a.tokens {
		if t.renewable { // from a login; static tokens stay
			t.expires = now
		}
	}
}

func (a *vaultAuth) counts() (logins, renewals int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.logins, a.renewals
}

// vaultEqual compares credentials in constant time.
func vaultEqual(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func randomVaultID(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
