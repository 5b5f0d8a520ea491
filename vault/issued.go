package vault

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"gatehouse"
)

// listPage is how many certificates one listing page asks for.
const listPage = 500

// Issued lists the certificates for commonName valid from since on, with
// OpenBao's LIST {mount}/certs/detailed, page by page ("after", "limit").
func (c *Client) Issued(ctx context.Context, commonName string, since time.Time) ([]gatehouse.IssuedCert, error) {
	var out []gatehouse.IssuedCert
	after := ""
	for {
		var page struct {
			Data struct {
				Keys    []string `json:"keys"`
				KeyInfo map[string]struct {
					CommonName string    `json:"common_name"`
					NotBefore  time.Time `json:"not_before"`
					NotAfter   time.Time `json:"not_after"`
				} `json:"key_info"`
			} `json:"data"`
		}
		q := url.Values{"list": {"true"}, "limit": {strconv.Itoa(listPage)}}
		if after != "" {
			q.Set("after", after)
		}
		err := c.call(ctx, http.MethodGet, c.pkiPath("certs/detailed")+"?"+q.Encode(), nil, &page)
		if err != nil {
			return nil, err
		}
		for _, k := range page.Data.Keys {
			info := page.Data.KeyInfo[k]
			if info.CommonName == commonName && !info.NotBefore.Before(since) {
				out = append(out, gatehouse.IssuedCert{Serial: k, CommonName: info.CommonName, NotBefore: info.NotBefore, NotAfter: info.NotAfter})
			}
		}
		if len(page.Data.Keys) < listPage {
			return out, nil
		}
		after = page.Data.Keys[len(page.Data.Keys)-1]
	}
}
