package simulate

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// listPage reads LIST's after and limit the way OpenBao's ListPage uses
// them (builtin/logical/pki/path_fetch.go pathFetchCertList): keys sorted
// as stored, strictly after "after", at most limit of them (non-positive:
// all). OpenBao stores serials with hyphens ("certs/0a-1b-…") and compares
// "after" with those stored keys as given, although it lists them with
// colons; a client that passes a listed (colon) serial back as "after"
// skips keys, here as there.
func listPage(r *http.Request) (after string, limit int, err error) {
	q := r.URL.Query()
	after = q.Get("after")
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil {
			return "", 0, vaultBadRequest(`error converting input %q for field "limit": %v`, s, err)
		}
	}
	return after, limit, nil
}

// storedPage returns the stored certificates of one page, in storage order.
func (p *PKI) storedPage(after string, limit int) []*storedCert {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.issued))
	for s := range p.issued {
		keys = append(keys, storageSerial(s))
	}
	sort.Strings(keys)
	i := sort.SearchStrings(keys, after)
	if i < len(keys) && keys[i] == after {
		i++
	}
	keys = keys[i:]
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]*storedCert, len(keys))
	for i, k := range keys {
		out[i] = p.issued[normalizeVaultSerial(k)]
	}
	return out
}

// storageSerial is normalizeSerial in OpenBao's util.go: hyphens, lower case.
func storageSerial(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), ":", "-")
}

// page reads one page, or the whole store for HashiCorp Vault, whose LIST
// certs has no after or limit and warns that it ignored them.
func (a *vaultAPI) page(r *http.Request) ([]*storedCert, []string, error) {
	after, limit, err := listPage(r)
	if err != nil {
		return nil, nil, err
	}
	if !a.opts.HashiCorp {
		return a.pki.storedPage(after, limit), nil, nil
	}
	var warnings []string
	if q := r.URL.Query(); q.Has("after") || q.Has("limit") {
		warnings = []string{"Endpoint ignored these unrecognized parameters: [after limit]"}
	}
	return a.pki.storedPage("", 0), warnings, nil
}

// listCerts answers LIST certs: serials with colons, or a 404 with no
// message when there are none (sdk/logical RespondErrorCommon).
func (a *vaultAPI) listCerts(w http.ResponseWriter, r *http.Request, _ []string) {
	certs, warnings, err := a.page(r)
	if err != nil {
		writeVaultErr(w, err)
		return
	}
	if len(certs) == 0 {
		writeVaultError(w, http.StatusNotFound)
		return
	}
	keys := make([]string, len(certs))
	for i, c := range certs {
		keys[i] = c.Serial
	}
	writeVaultData(w, map[string]any{"keys": keys}, warnings...)
}

// listCertsDetailed answers OpenBao's LIST certs/detailed
// (pathFetchCertListDetailed): keys plus key_info per serial. HashiCorp
// Vault has no such path.
func (a *vaultAPI) listCertsDetailed(w http.ResponseWriter, r *http.Request, _ []string) {
	if a.opts.HashiCorp {
		writeVaultError(w, http.StatusNotFound, "unsupported path")
		return
	}
	certs, _, err := a.page(r)
	if err != nil {
		writeVaultErr(w, err)
		return
	}
	if len(certs) == 0 {
		writeVaultError(w, http.StatusNotFound)
		return
	}
	keys, info := make([]string, len(certs)), map[string]any{}
	for i, c := range certs {
		keys[i] = c.Serial
		info[c.Serial] = keyInfo(c)
	}
	writeVaultData(w, map[string]any{"keys": keys, "key_info": info})
}

func keyInfo(c *storedCert) map[string]any {
	x := c.x509
	typ, bits := keyTypeOf(x.PublicKey)
	if typ == "ed25519" {
		bits = 256 // as pathFetchCertListDetailed reports it
	}
	dns := x.DNSNames
	if len(dns) > 5 {
		dns = dns[:5]
	}
	return map[string]any{
		"common_name": x.Subject.CommonName, "issuer": x.Issuer.String(),
		"key_type": typ, "key_bits": bits, "dns_names": nonNil(dns),
		"not_before": x.NotBefore, "not_after": x.NotAfter,
	}
}

// readCert answers GET cert/<serial>, which OpenBao serves without a token
// (PathsSpecial.Unauthenticated has "cert/*"): the certificate and, once
// revoked, when.
func (a *vaultAPI) readCert(w http.ResponseWriter, r *http.Request, params []string) {
	serial := normalizeVaultSerial(params[0])
	if serial == "ca" {
		writeVaultData(w, map[string]any{"certificate": strings.TrimSpace(a.pki.CACertPEM())})
		return
	}
	c, revokedAt := a.pki.lookup(serial)
	if c == nil {
		writeVaultError(w, http.StatusNotFound)
		return
	}
	d := map[string]any{"certificate": strings.TrimSpace(c.CertificatePEM), "revocation_time": int64(0), "issuer_id": "default"}
	if !revokedAt.IsZero() {
		d["revocation_time"], d["revocation_time_rfc3339"] = revokedAt.Unix(), revokedAt.UTC().Format(time.RFC3339Nano)
	}
	writeVaultData(w, d)
}

// lookup returns a stored certificate and when it was revoked (zero: not).
func (p *PKI) lookup(serial string) (*storedCert, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.issued[serial], p.revoked[serial]
}
