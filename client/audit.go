package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"gatehouse/audit"
)

// AuditPage is one page of the audit log.
type AuditPage struct {
	Entries []audit.Entry `json:"entries"`
	// NextBefore is the before of the next older page; 0 at the first entry.
	NextBefore int64 `json:"next_before"`
	// NextAfter is the after of the next page when paging oldest first.
	NextAfter int64 `json:"next_after"`
}

// AuditLog returns a page of the audit log, newest first, below seq before
// (0: from the newest). It needs an admin token. limit 0 is the server's
// default (100).
func (c *Client) AuditLog(ctx context.Context, before int64, limit int) (*AuditPage, error) {
	q := url.Values{}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	return c.auditPage(ctx, q, limit)
}

// AuditAfter returns a page of the audit log, oldest first, above seq after.
func (c *Client) AuditAfter(ctx context.Context, after int64, limit int) (*AuditPage, error) {
	return c.auditPage(ctx, url.Values{"after": {strconv.FormatInt(after, 10)}}, limit)
}

func (c *Client) auditPage(ctx context.Context, q url.Values, limit int) (*AuditPage, error) {
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out AuditPage
	if err := c.do(ctx, http.MethodGet, "/api/v1/audit", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AuditPageSize is how many entries AuditEntries asks for at a time: the
// server's maximum.
const AuditPageSize = 1000

// AuditEntries yields the whole audit log, oldest first, a page per
// request, up to what the server holds when the last page is read. It stops
// after the first error.
func (c *Client) AuditEntries(ctx context.Context) iter.Seq2[audit.Entry, error] {
	return func(yield func(audit.Entry, error) bool) {
		var after int64
		for {
			page, err := c.AuditAfter(ctx, after, AuditPageSize)
			if err != nil {
				yield(audit.Entry{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if len(page.Entries) < AuditPageSize {
				return
			}
			after = page.Entries[len(page.Entries)-1].Seq
		}
	}
}
