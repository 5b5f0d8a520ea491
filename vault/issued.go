package vault

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gatehouse"
	"gatehouse/rest"
)

// listPage is how many certificates one listing page asks for (a variable
// so that tests can page through a few).
var listPage = 500

// issuedSlack widens Issued's window for clock skew between gatehouse and
// Vault: a certificate found by mistake costs a revocation the caller
// filters out by serial, one missed stays valid beside its replacement.
const issuedSlack = time.Minute

// Issued lists the certificates for commonName issued at or after since
// (revoked ones included). Vault backdates NotBefore by the role's
// not_before_duration (30 s by default), so a certificate counts from its
// NotBefore plus that, minus a minute for clock skew: the answer may hold
// certificates issued shortly before since, and the caller excludes the
// serial it keeps.
//
// It uses OpenBao's LIST {mount}/certs/detailed page by page; where that
// path does not exist (HashiCorp Vault) or the policy does not allow it,
// it lists {mount}/certs and reads every certificate.
func (c *Client) Issued(ctx context.Context, commonName string, since time.Time) ([]gatehouse.IssuedCert, error) {
	from := since.Add(-c.roleBackdate(ctx) - issuedSlack)
	var out []gatehouse.IssuedCert
	keep := func(ic gatehouse.IssuedCert) {
		if ic.CommonName == commonName && !ic.NotBefore.Before(from) {
			out = append(out, ic)
		}
	}
	err := c.listDetailed(ctx, keep)
	if unsupportedPath(err) || rest.StatusOf(err) == http.StatusForbidden {
		out = nil
		err = c.listPlain(ctx, keep)
	}
	if rest.StatusOf(err) == http.StatusForbidden {
		return nil, fmt.Errorf("vault: cannot list certificates on mount %s: the policy needs \"list\" on %s/certs/detailed (OpenBao) or %s/certs (HashiCorp Vault), "+
			"and \"read\" on %s/cert/*: %w", c.cfg.Mount, c.cfg.Mount, c.cfg.Mount, c.cfg.Mount, err)
	}
	return out, err
}

// roleBackdate is the role's backdating, read once; a role the token may
// not read counts with the default.
func (c *Client) roleBackdate(ctx context.Context) time.Duration {
	c.mu.Lock()
	d := c.backdate
	c.mu.Unlock()
	if d > 0 {
		return d
	}
	role, err := c.ReadRole(ctx) // remembers the role's backdating
	switch s := rest.StatusOf(err); {
	case err == nil:
		return role.backdate()
	case s == http.StatusForbidden || s == http.StatusNotFound:
		return c.rememberBackdate(Role{})
	}
	return defaultBackdate
}

// listDetailed walks LIST certs/detailed.
func (c *Client) listDetailed(ctx context.Context, visit func(gatehouse.IssuedCert)) error {
	return c.walk(ctx, "certs/detailed", func(keys []string, info map[string]keyInfo) error {
		for _, k := range keys {
			i := info[k]
			visit(gatehouse.IssuedCert{Serial: k, CommonName: i.CommonName, NotBefore: i.NotBefore, NotAfter: i.NotAfter})
		}
		return nil
	})
}

// listPlain walks LIST certs and reads each certificate, for HashiCorp
// Vault, which has no certs/detailed.
func (c *Client) listPlain(ctx context.Context, visit func(gatehouse.IssuedCert)) error {
	return c.walk(ctx, "certs", func(keys []string, _ map[string]keyInfo) error {
		for _, k := range keys {
			ic, err := c.readIssued(ctx, k)
			switch {
			case rest.StatusOf(err) == http.StatusNotFound: // tidied since the listing
			case err != nil:
				return err
			default:
				visit(ic)
			}
		}
		return nil
	})
}

// keyInfo is one entry of certs/detailed's key_info.
type keyInfo struct {
	CommonName string    `json:"common_name"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
}

// walk lists path page by page. OpenBao compares "after" with its stored
// keys, which have hyphens where the listing shows colons, so the last key
// goes back with hyphens. A server that ignores limit (HashiCorp Vault's
// LIST certs) answers everything at once, which ends the walk.
func (c *Client) walk(ctx context.Context, path string, page func([]string, map[string]keyInfo) error) error {
	after := ""
	for {
		var out struct {
			Data struct {
				Keys    []string           `json:"keys"`
				KeyInfo map[string]keyInfo `json:"key_info"`
			} `json:"data"`
		}
		q := url.Values{"list": {"true"}, "limit": {strconv.Itoa(listPage)}}
		if after != "" {
			q.Set("after", after)
		}
		err := c.call(ctx, http.MethodGet, c.pkiPath(path)+"?"+q.Encode(), nil, &out)
		if emptyList(err) {
			return nil
		}
		if err != nil {
			return err
		}
		keys := out.Data.Keys
		if err := page(keys, out.Data.KeyInfo); err != nil || len(keys) != listPage {
			return err
		}
		after = strings.ReplaceAll(keys[len(keys)-1], ":", "-")
	}
}

// readIssued reads cert/{serial}, which PKI serves without a token.
func (c *Client) readIssued(ctx context.Context, serial string) (gatehouse.IssuedCert, error) {
	var out struct {
		Data struct {
			Certificate string `json:"certificate"`
		} `json:"data"`
	}
	if err := c.call(ctx, http.MethodGet, c.pkiPath("cert/"+url.PathEscape(serial)), nil, &out); err != nil {
		return gatehouse.IssuedCert{}, err
	}
	block, _ := pem.Decode([]byte(out.Data.Certificate))
	if block == nil {
		return gatehouse.IssuedCert{}, errors.New("vault: cert/" + serial + ": answer carries no PEM certificate")
	}
	x, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return gatehouse.IssuedCert{}, fmt.Errorf("vault: cert/%s: %w", serial, err)
	}
	return gatehouse.IssuedCert{Serial: serial, CommonName: x.Subject.CommonName, NotBefore: x.NotBefore, NotAfter: x.NotAfter}, nil
}
