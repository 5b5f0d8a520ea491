package client

import (
	"context"
	"net/http"

	"gatehouse"
)

// The bulk wire types, as the server reads and answers them.
type (
	BulkRequest = gatehouse.BulkRequest
	BulkTarget  = gatehouse.BulkTarget
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
