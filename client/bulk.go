package client

import (
	"context"
	"net/http"

	"gatehouse"
)

// BulkItem is one gateway of a bulk request: by ID or by MAC.
type BulkItem struct {
	ID     string            `json:"id,omitempty"`
	MAC    string            `json:"mac,omitempty"`
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// BulkRequest approves or dismisses many pending gateways: Items each with
// its name, or IDs named by Pattern ("site-a-{n:03}") from Start.
type BulkRequest struct {
	Action  string            `json:"action"`
	Items   []BulkItem        `json:"items,omitempty"`
	IDs     []string          `json:"ids,omitempty"`
	Pattern string            `json:"pattern,omitempty"`
	Start   *int              `json:"start,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	DryRun  bool              `json:"dry_run,omitempty"`
}

// BulkPlan and BulkProblem are the wire types, shared with the client.
type (
	BulkPlan    = gatehouse.BulkPlan
	BulkProblem = gatehouse.BulkProblem
)

// PlanBulk asks what req would do, starting nothing.
func (c *Client) PlanBulk(ctx context.Context, req BulkRequest) (*BulkPlan, error) {
	req.DryRun = true
	var out BulkPlan
	if err := c.do(ctx, http.MethodPost, "/api/v1/bulk", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StartBulk starts a bulk operation; follow it with Bulk.
func (c *Client) StartBulk(ctx context.Context, req BulkRequest) (*gatehouse.BulkOperation, error) {
	req.DryRun = false
	var out gatehouse.BulkOperation
	if err := c.do(ctx, http.MethodPost, "/api/v1/bulk", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Bulk returns a bulk operation's progress and its items' results.
func (c *Client) Bulk(ctx context.Context, id string) (*gatehouse.BulkOperation, error) {
	var out gatehouse.BulkOperation
	if err := c.do(ctx, http.MethodGet, "/api/v1/bulk/"+segment(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
