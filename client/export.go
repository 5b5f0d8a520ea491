package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// ExportDevices writes to w, as CSV with a header row, every device opts
// selects (its State, Search, Seen and Sort; not a page: Limit and Offset
// are not used). It streams: a fleet's export is never held in memory. An
// export the server cut short is an error, and w then holds only part.
func (c *Client) ExportDevices(ctx context.Context, opts ListOptions, w io.Writer) error {
	const path = "/api/v1/devices"
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	q := opts.filter()
	q.Set("format", "csv")
	req, err := c.newRequest(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/csv")
	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportError(ctx, http.MethodGet, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		if err != nil {
			return fmt.Errorf("GET %s: read response: %w", path, err)
		}
		return apiError(http.MethodGet, path, resp.StatusCode, data)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("GET %s: export cut short: %w", path, err)
	}
	return nil
}
