package simulate_test

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gatehouse/simulate"
)

func issueN(t *testing.T, s *simulate.VaultServer, n int) []string {
	t.Helper()
	var serials []string
	for i := range n {
		r := vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", vaultRoot, map[string]any{"common_name": fmt.Sprintf("gw-%02d", i)})
		r.want(t, 200, "")
		serials = append(serials, r.str("serial_number"))
	}
	// Storage order: the hyphenated serials sorted (path_fetch.go lists
	// "certs/" with ListPage), which is also their colon order.
	sort.Strings(serials)
	return serials
}

func keysOf(r vaultReply) []string {
	var out []string
	for _, k := range r.Data["keys"].([]any) {
		out = append(out, k.(string))
	}
	return out
}

// LIST certs pages with after (exclusive) and limit, by GET ?list=true or
// the LIST method; an empty store is a 404 with no message
// (sdk/logical RespondErrorCommon).
func TestVaultListCertsHTTP(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{})
	r := vaultCall(t, s, "LIST", "/v1/pki/certs", vaultRoot, nil)
	r.want(t, 404, "")
	if len(r.Errors) != 0 {
		t.Errorf("empty list errors %q, want none", r.Errors)
	}
	serials := issueN(t, s, 7)
	var got []string
	after := ""
	for range 10 {
		q := url.Values{"list": {"true"}, "limit": {"3"}}
		if after != "" {
			q.Set("after", after)
		}
		r := vaultCall(t, s, "GET", "/v1/pki/certs?"+q.Encode(), vaultRoot, nil)
		if r.status == 404 {
			break
		}
		r.want(t, 200, "")
		keys := keysOf(r)
		got = append(got, keys...)
		if len(keys) < 3 {
			break
		}
		after = strings.ReplaceAll(keys[len(keys)-1], ":", "-") // as stored
	}
	if !slices.Equal(got, serials) {
		t.Errorf("paged listing %v, want %v", got, serials)
	}
	all := keysOf(vaultCall(t, s, "LIST", "/v1/pki/certs/", vaultRoot, nil))
	if !slices.Equal(all, serials) {
		t.Errorf("LIST without paging %v", all)
	}
}

// OpenBao compares "after" with the stored, hyphenated serials although it
// lists them with colons: a listed serial passed back as is skips every
// key that shares its first byte.
func TestVaultListAfterColonSerialSkips(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{})
	serials := issueN(t, s, 5)
	first := serials[0]
	r := vaultCall(t, s, "LIST", "/v1/pki/certs?after="+url.QueryEscape(first), vaultRoot, nil)
	var want []string
	for _, k := range serials {
		if k[:2] > first[:2] {
			want = append(want, k)
		}
	}
	if len(want) == 0 {
		r.want(t, 404, "")
		return
	}
	if got := keysOf(r); !slices.Equal(got, want) {
		t.Errorf("after the colon serial %s: %v, want %v", first, got, want)
	}
}

// LIST certs/detailed (path_fetch.go pathFetchCertListDetailed) adds
// key_info with the common name and validity of each serial.
func TestVaultListCertsDetailedHTTP(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{})
	serials := issueN(t, s, 3)
	r := vaultCall(t, s, "GET", "/v1/pki/certs/detailed?list=true&limit=2", vaultRoot, nil)
	r.want(t, 200, "")
	if keys := keysOf(r); !slices.Equal(keys, serials[:2]) {
		t.Errorf("keys %v, want %v", keys, serials[:2])
	}
	info := r.Data["key_info"].(map[string]any)[serials[0]].(map[string]any)
	nb, err := time.Parse(time.RFC3339, info["not_before"].(string))
	if err != nil || time.Since(nb) < 29*time.Second || time.Since(nb) > time.Minute {
		t.Errorf("not_before %v (%v), want about 30 s ago", info["not_before"], err)
	}
	if !strings.HasPrefix(info["common_name"].(string), "gw-") || info["key_type"] != "ec" || info["key_bits"] != 256.0 {
		t.Errorf("key_info %v", info)
	}
	if _, err := time.Parse(time.RFC3339, info["not_after"].(string)); err != nil {
		t.Errorf("not_after %v: %v", info["not_after"], err)
	}
}

// HashiCorp Vault has no certs/detailed, and its LIST certs ignores after
// and limit (with a warning).
func TestVaultHashiCorpListing(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{HashiCorp: true})
	serials := issueN(t, s, 3)
	vaultCall(t, s, "LIST", "/v1/pki/certs/detailed", vaultRoot, nil).want(t, 404, "unsupported path")
	r := vaultCall(t, s, "LIST", "/v1/pki/certs?limit=1", vaultRoot, nil)
	r.want(t, 200, "")
	if !slices.Equal(keysOf(r), serials) || len(r.Warn) != 1 {
		t.Errorf("keys %v, warnings %q: want all keys and a warning", keysOf(r), r.Warn)
	}
}

// cert/<serial> needs no token (PathsSpecial.Unauthenticated "cert/*") and
// shows a revocation once there is one.
func TestVaultReadCertHTTP(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{})
	serial := issueN(t, s, 1)[0]
	r := vaultCall(t, s, "GET", "/v1/pki/cert/"+strings.ReplaceAll(serial, ":", "-"), "", nil)
	r.want(t, 200, "")
	if cert := parseCert(t, r.str("certificate")+"\n"); simulate.FormatSerial(cert.SerialNumber) != serial || r.Data["revocation_time"] != 0.0 {
		t.Errorf("cert %v, revocation_time %v", cert.SerialNumber, r.Data["revocation_time"])
	}
	vaultCall(t, s, "POST", "/v1/pki/revoke", vaultRoot, map[string]any{"serial_number": serial}).want(t, 200, "")
	r = vaultCall(t, s, "GET", "/v1/pki/cert/"+serial, "", nil)
	if r.Data["revocation_time"] == 0.0 || r.str("revocation_time_rfc3339") == "" {
		t.Errorf("revoked certificate: %v", r.Data)
	}
	vaultCall(t, s, "GET", "/v1/pki/cert/de:ad", "", nil).want(t, 404, "")
}

// Listing needs "list" in the token's policy; without it, 403.
func TestVaultListNeedsPolicy(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{Tokens: map[string]simulate.VaultPolicy{
		limitedToken: {"pki/certs": {"list"}, "pki/issue/gatehouse": {"update"}},
	}})
	vaultCall(t, s, "POST", "/v1/pki/issue/gatehouse", limitedToken, map[string]any{"common_name": "gw-01"}).want(t, 200, "")
	vaultCall(t, s, "LIST", "/v1/pki/certs/detailed", limitedToken, nil).want(t, 403, "permission denied")
	vaultCall(t, s, "LIST", "/v1/pki/certs", limitedToken, nil).want(t, 200, "")
	vaultCall(t, s, "GET", "/v1/pki/certs", limitedToken, nil).want(t, 403, "permission denied") // a read, not a list
}
