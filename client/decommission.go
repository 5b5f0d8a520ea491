package client

import (
	"context"
	"net/http"
	"net/url"

	"gatehouse"
)

// Decommission removes a device from every backend, or with dryRun lists
// what would be removed where and changes nothing.
func (c *Client) Decommission(ctx context.Context, id string, dryRun bool) (*gatehouse.Decommission, error) {
	p, err := devicePath(id, "")
	if err != nil {
		return nil, err
	}
	var q url.Values
	if dryRun {
		q = url.Values{"dry_run": {"true"}}
	}
	var out gatehouse.Decommission
	if err := c.do(ctx, http.MethodDelete, p, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Forget forgets a dismissed or fully decommissioned device: its key's
// next contact is a fresh enrollment.
func (c *Client) Forget(ctx context.Context, id string) (*gatehouse.Forgotten, error) {
	p, err := devicePath(id, "/forget")
	if err != nil {
		return nil, err
	}
	var out gatehouse.Forgotten
	if err := c.do(ctx, http.MethodPost, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
