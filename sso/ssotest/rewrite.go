package ssotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"

	jose "github.com/go-jose/go-jose/v4"
)

// rewrite is how the token endpoint falsifies the ID tokens it hands out.
type rewrite struct {
	claims     func(map[string]any)
	foreignKey bool
}

// RewriteIDToken makes the token endpoint change the claims of each ID
// token it issues from now on, and sign the result again: with the
// provider's own key, as a provider with a bug or a mixed-up answer would,
// or with a key it never published. A nil change stops it.
func (p *Provider) RewriteIDToken(change func(claims map[string]any), foreignKey bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rewrite = nil
	if change != nil {
		p.rewrite = &rewrite{claims: change, foreignKey: foreignKey}
	}
}

// rewriteIDTokens wraps the token endpoint with the rewrite, if one is set.
func (p *Provider) rewriteIDTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		rw := p.rewrite
		p.mu.Unlock()
		if rw == nil {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			if b, err := p.falsify(body, rw); err == nil {
				body = b
			} else {
				http.Error(w, "ssotest: rewrite: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}

func (p *Provider) falsify(body []byte, rw *rewrite) ([]byte, error) {
	var resp map[string]any
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, err
	}
	raw, _ := resp["id_token"].(string)
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return nil, err
	}
	rw.claims(claims)
	key := p.key
	if rw.foreignKey {
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", p.kid))
	if err != nil {
		return nil, err
	}
	payload, _ := json.Marshal(claims)
	signed, err := signer.Sign(payload)
	if err != nil {
		return nil, err
	}
	if resp["id_token"], err = signed.CompactSerialize(); err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}
