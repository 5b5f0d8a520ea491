package simulate

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// menderAuth is useradm as the management API sees it: a personal access
// token, and logins that issue JWTs which expire. The JWTs are HS256, not
// Mender's RS256, since only the simulator itself verifies them.
type menderAuth struct {
	token, user, password string
	ttl                   time.Duration
	key                   []byte
	now                   func() time.Time

	mu     sync.Mutex
	live   map[string]time.Time // jti → expiry (zero: no_expiry) of valid login JWTs
	logins int
}

type menderClaims struct {
	Exp int64  `json:"exp,omitempty"`
	Iat int64  `json:"iat"`
	Iss string `json:"iss"`
	Jti string `json:"jti"`
	Sub string `json:"sub"`
	Scp string `json:"scp"`
}

func newMenderAuth(opts MenderServerOptions) *menderAuth {
	key := make([]byte, 32)
	rand.Read(key)
	ttl := opts.JWTTTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	return &menderAuth{
		token: opts.Token, user: opts.User, password: opts.Password,
		ttl: ttl, key: key, now: time.Now, live: make(map[string]time.Time),
	}
}

// login serves POST /api/management/v1/useradm/auth/login: HTTP Basic in,
// the JWT as the raw body out.
func (a *menderAuth) login(w http.ResponseWriter, r *http.Request) {
	var opts struct {
		NoExpiry bool `json:"no_expiry"`
	}
	if !decodeMenderOptional(w, r, &opts) {
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || a.user == "" || !menderEqual(user, a.user) || !menderEqual(pass, a.password) {
		writeMenderError(w, r, http.StatusUnauthorized, "unauthorized")
		return
	}
	w.Header().Set("Content-Type", "application/jwt")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(a.issue(opts.NoExpiry)))
}

func (a *menderAuth) issue(noExpiry bool) string {
	now := a.now()
	c := menderClaims{Iat: now.Unix(), Iss: "Mender", Jti: newUUID(), Sub: newUUID(), Scp: "mender.*"}
	var exp time.Time
	if !noExpiry {
		// Whole seconds, as JWT libraries compare exp: a token may live up
		// to a second less than the TTL.
		exp = time.Unix(now.Add(a.ttl).Unix(), 0)
		c.Exp = exp.Unix()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for jti, e := range a.live {
		if !e.IsZero() && !now.Before(e) {
			delete(a.live, jti)
		}
	}
	a.live[c.Jti] = exp
	a.logins++
	return signHS256(a.key, c)
}

// valid accepts the personal access token, or a JWT this server issued that
// has neither expired nor been expired by ExpireSessions.
func (a *menderAuth) valid(bearer string) bool {
	if a.token != "" && menderEqual(bearer, a.token) {
		return true
	}
	payload, ok := verifyHS256(a.key, bearer)
	var c menderClaims
	if !ok || json.Unmarshal(payload, &c) != nil {
		return false
	}
	return a.isLive(c.Jti)
}

// isLive reports whether a login JWT is still valid.
func (a *menderAuth) isLive(jti string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	exp, ok := a.live[jti]
	return ok && (exp.IsZero() || a.now().Before(exp))
}

// require answers 401 unless the request carries a valid bearer token.
func (a *menderAuth) require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || !a.valid(strings.TrimSpace(token)) {
			writeMenderError(w, r, http.StatusUnauthorized, "Unauthorized")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (a *menderAuth) expireAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.live)
}

func (a *menderAuth) loginCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.logins
}

func menderEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func menderCutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
