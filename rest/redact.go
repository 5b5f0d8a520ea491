package rest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// redactor hides a call's secrets in the error text a service sent back:
// services, proxies and validation errors sometimes echo the request, and
// an error travels into logs, the database and the operator's screen.
type redactor struct{ secrets []string }

// minRedact is the shortest value hidden; shorter ones would mangle
// ordinary words of a message and are no credential.
const minRedact = 8

// credentialHeaders lists the values of the headers that carry
// credentials: the usual ones, and any header the Auth hook set.
func credentialHeaders(before, after http.Header) []string {
	var out []string
	for name, vs := range after {
		if slices.Equal(before[name], vs) && !credentialHeader(name) {
			continue
		}
		out = append(out, vs...)
	}
	return out
}

func credentialHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Proxy-Authorization", "Cookie", "X-Vault-Token":
		return true
	}
	return false
}

// newRedactor hides each secret and each header value, after its scheme
// ("Bearer [redacted]" still says what kind of credential was echoed), as
// is and URL-unescaped, as a service might repeat it.
func newRedactor(secrets, headers []string) *redactor {
	r := &redactor{}
	add := func(s string) {
		if len(s) >= minRedact && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
	for _, s := range secrets {
		add(s)
	}
	for _, h := range headers {
		if _, cred, ok := strings.Cut(h, " "); ok {
			h = cred
		}
		add(h)
		if u, err := url.QueryUnescape(h); err == nil {
			add(u)
		}
	}
	// Longest first, so a value containing another is hidden whole.
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	return r
}

func (r *redactor) redact(s string) string {
	if r == nil {
		return s
	}
	for _, x := range r.secrets {
		s = strings.ReplaceAll(s, x, "[redacted]")
	}
	return s
}
