package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"gatehouse"
	"gatehouse/roster"
)

// ImportTimeout bounds an allowlist import unless the client's own timeout
// is longer: the server asks every backend about every name at the pace of
// its quota, which takes minutes for a large file.
const ImportTimeout = 15 * time.Minute

// ImportOptions say what the server does with a file that has bad rows.
type ImportOptions struct {
	SkipInvalid bool // import the good rows anyway
	DryRun      bool // check only
}

// ImportResult is what an import did, or in a dry run would do.
type ImportResult struct {
	DryRun    bool                       `json:"dry_run"`
	Rows      int                        `json:"rows"`
	Imported  []gatehouse.AllowlistEntry `json:"imported"`
	Unchanged int                        `json:"unchanged"`
	Errors    []roster.RowError          `json:"errors"`
}

// RowsError is a refused import: the server's message, and in Result each
// bad row by line. Its code is gatehouse.EINVALID.
type RowsError struct {
	Message string
	Result  *ImportResult
}

func (e *RowsError) Error() string { return e.Message }

// Unwrap lets gatehouse.ErrorCode and ErrorMessage read the refusal.
func (e *RowsError) Unwrap() error {
	return &gatehouse.Error{Code: gatehouse.EINVALID, Message: e.Message}
}

// ImportAllowlist sends a CSV file of MAC, name and labels to be listed. A
// file with bad rows comes back as *RowsError unless opt.SkipInvalid.
func (c *Client) ImportAllowlist(ctx context.Context, csv []byte, opt ImportOptions) (*ImportResult, error) {
	const path = "/api/v1/allowlist"
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, max(c.timeout, ImportTimeout))
		defer cancel()
	}
	q := url.Values{}
	if opt.SkipInvalid {
		q.Set("skip_invalid", "true")
	}
	if opt.DryRun {
		q.Set("dry_run", "true")
	}
	req, err := c.newRequest(ctx, http.MethodPost, path, q, nil)
	if err != nil {
		return nil, err
	}
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(csv)), int64(len(csv))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(csv)), nil }
	req.Header.Set("Content-Type", "text/csv; charset=utf-8")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, http.MethodPost, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("POST %s: read response: %w", path, err)
	}
	return importAnswer(resp.StatusCode, data)
}

func importAnswer(status int, data []byte) (*ImportResult, error) {
	const path = "/api/v1/allowlist"
	var body struct {
		ImportResult
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	switch {
	case status == http.StatusUnprocessableEntity && json.Unmarshal(data, &body) == nil && body.Error != nil:
		return &body.ImportResult, &RowsError{Message: body.Error.Message, Result: &body.ImportResult}
	case status >= 400:
		return nil, apiError(http.MethodPost, path, status, data)
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return nil, fmt.Errorf("POST %s: unexpected %d answer (is it a gatehouse server?): %w", path, status, err)
	}
	return &body.ImportResult, nil
}

// AllowlistPage is a page of the allowlist and how many entries it has.
type AllowlistPage struct {
	Entries []gatehouse.AllowlistEntry `json:"entries"`
	Total   int                        `json:"total"`
}

// Allowlist returns entries in MAC order; limit 0 is the server's default.
func (c *Client) Allowlist(ctx context.Context, offset, limit int) (*AllowlistPage, error) {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if offset != 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	var out AllowlistPage
	if err := c.do(ctx, http.MethodGet, "/api/v1/allowlist", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveAllowlistEntry takes a MAC off the allowlist.
func (c *Client) RemoveAllowlistEntry(ctx context.Context, mac string) error {
	if mac == "" {
		return gatehouse.Errorf(gatehouse.EINVALID, "a MAC is required")
	}
	return c.do(ctx, http.MethodDelete, "/api/v1/allowlist/"+url.PathEscape(mac), nil, nil, nil)
}
