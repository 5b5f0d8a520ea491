package client

import (
	"context"
	"net/http"
	"net/url"

	"gatehouse"
)

// ExpiringCert is a certificate about to expire, with its gateway.
type ExpiringCert struct {
	gatehouse.DeviceCert
	Name  string          `json:"name"`
	State gatehouse.State `json:"state"`
}

// ExpiringCerts is the fleet view of certificates about to expire.
type ExpiringCerts struct {
	Within       string         `json:"expiring_within"`
	Certificates []ExpiringCert `json:"certificates"`
}

// Certificates lists the certificates gatehouse keeps for a device, newest
// first: the provisioning one and each renewal.
func (c *Client) Certificates(ctx context.Context, id string) ([]gatehouse.DeviceCert, error) {
	p, err := devicePath(id, "/certificates")
	if err != nil {
		return nil, err
	}
	var out struct {
		Certificates []gatehouse.DeviceCert `json:"certificates"`
	}
	if err := c.do(ctx, http.MethodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Certificates, nil
}

// CertsExpiring lists the fleet's certificates not revoked that expire
// within the horizon, written as the server takes it ("14d", "36h"); ""
// is the server's default of 14 days.
func (c *Client) CertsExpiring(ctx context.Context, within string) (*ExpiringCerts, error) {
	q := url.Values{}
	setParam(q, "expiring_within", within)
	var out ExpiringCerts
	if err := c.do(ctx, http.MethodGet, "/api/v1/certificates", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
