package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gatehouse"
	"gatehouse/audit"
	"gatehouse/store"
)

// The actions gatehouse records. Code adding more names them "noun.verb"
// (user.create, token.revoke, ...); see docs/audit.md.
const (
	ActionDeviceApprove      = "device.approve"
	ActionDeviceDismiss      = "device.dismiss"
	ActionDeviceRetry        = "device.retry"
	ActionDeviceRestore      = "device.restore"
	ActionDeviceUpdate       = "device.update"
	ActionLoginRefused       = "login.refused"
	ActionCredentialsRefused = "credentials.refused"
	ActionAccessDenied       = "access.denied"
	ActionLogin              = "session.login"
	ActionTokenCreate        = "token.create"
	ActionTokenRevoke        = "token.revoke"
	ActionUserCreate         = "user.create"
	ActionUserUpdate         = "user.update"
	ActionUserDelete         = "user.delete"
	ActionAllowlistImport    = "allowlist.import"
	ActionAllowlistRemove    = "allowlist.remove"
)

// actionPattern keeps action names greppable and free of anything a caller
// typed.
var actionPattern = regexp.MustCompile(`^[a-z][a-z_]*(\.[a-z][a-z_]*)+$`)

// Bounds on what one entry holds. Targets and detail may come from a
// request (a device id in a path, a refused name), so they are clipped
// rather than stored whole.
const (
	maxAuditText   = 256
	maxAuditResult = 1024
	maxAuditDetail = 8 << 10
)

// refusalRecordTimeout bounds recording a refused decision, which runs
// even when the request that asked has gone away.
const refusalRecordTimeout = 5 * time.Second

// audit records a decision in tx, the transaction of the change itself, so
// a change is never committed without its entry. Who and from where come
// from gatehouse.OriginOf(ctx). result nil is "ok"; an error is recorded
// as "refused: MESSAGE" or "failed: MESSAGE" with only its caller-safe
// message. detail must not hold secrets: keys that name one and values
// that look like an API token are refused.
func (s *Service) audit(ctx context.Context, tx *store.Tx, action, target string, result error, detail map[string]any) error {
	return recordIn(ctx, tx, action, target, result, detail)
}

// recordIn is audit for code that works on a database without a Service
// (the CLI's --db commands).
func recordIn(ctx context.Context, tx *store.Tx, action, target string, result error, detail map[string]any) error {
	e, err := newEntry(ctx, action, target, result, detail)
	if err != nil {
		return err
	}
	return tx.AppendAudit(ctx, e)
}

// AuditTx records an admin change in the caller's transaction, the one
// making the change; see audit for the rules.
func (s *Service) AuditTx(ctx context.Context, tx *store.Tx, action, target string, result error, detail map[string]any) error {
	return s.audit(ctx, tx, action, target, result, detail)
}

// Audit records an entry in a transaction of its own: for refusals, and for
// changes made outside the database. Changes made in a transaction should
// use AuditTx in it instead.
func (s *Service) Audit(ctx context.Context, action, target string, result error, detail map[string]any) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error { return s.audit(ctx, tx, action, target, result, detail) })
}

// recordRefusal records that a decision was refused or failed, in its own
// transaction since the decision's was rolled back, and returns err. It
// records even if the asker has gone: the attempt happened. Failing to
// record is logged; the caller still gets the refusal.
func (s *Service) recordRefusal(ctx context.Context, action, target string, detail map[string]any, err error) error {
	return refusedIn(ctx, s.db, s.log, action, target, detail, err)
}

// refusedIn is recordRefusal for code without a Service.
func refusedIn(ctx context.Context, db *store.DB, log *slog.Logger, action, target string, detail map[string]any, err error) error {
	if err == nil {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refusalRecordTimeout)
	defer cancel()
	aerr := db.InTx(rctx, func(tx *store.Tx) error { return recordIn(rctx, tx, action, target, err, detail) })
	if aerr != nil {
		log.Error("audit: could not record a refused decision", "action", action, "target", clip(target, maxAuditText), "err", aerr)
	}
	return err
}

// withActor gives ctx an actor when the caller set none, for callers that
// name the actor but come from no request (tests, local commands).
func withActor(ctx context.Context, actor string) context.Context {
	o := gatehouse.OriginOf(ctx)
	if o.Actor != "" || actor == "" {
		return ctx
	}
	o.Actor = actor
	return gatehouse.WithOrigin(ctx, o)
}

func newEntry(ctx context.Context, action, target string, result error, detail map[string]any) (*audit.Entry, error) {
	if !actionPattern.MatchString(action) {
		return nil, fmt.Errorf("provision: audit action %q: want lower-case noun.verb", action)
	}
	text, err := detailText(detail)
	if err != nil {
		return nil, fmt.Errorf("provision: audit %s: %w", action, err)
	}
	o := gatehouse.OriginOf(ctx)
	if o.Actor == "" {
		o.Actor = "unknown"
	}
	return &audit.Entry{
		Actor: clip(o.Actor, maxAuditText), Source: clip(o.Source, maxAuditText), RequestID: clip(o.RequestID, maxAuditText),
		Action: action, Target: clip(target, maxAuditText), Result: clip(resultText(result), maxAuditResult), Detail: text,
	}, nil
}

// resultText is "ok", "refused: ..." for what the caller asked wrongly, or
// "failed: ..." for what went wrong on gatehouse's side. Only messages meant
// for callers are used, so nothing internal or secret is recorded.
func resultText(err error) string {
	if err == nil {
		return "ok"
	}
	switch gatehouse.ErrorCode(err) {
	case gatehouse.EINTERNAL, gatehouse.EUNAVAILABLE:
		return "failed: " + gatehouse.ErrorMessage(err)
	}
	return "refused: " + gatehouse.ErrorMessage(err)
}

// detailText is detail as a JSON object, its strings clipped, refused if it
// looks like it carries a secret.
func detailText(detail map[string]any) (string, error) {
	if len(detail) == 0 {
		return "{}", nil
	}
	clean, err := cleanDetail("", detail)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(clean)
	if err != nil {
		return "", fmt.Errorf("detail: %w", err)
	}
	if len(b) > maxAuditDetail {
		b, _ = json.Marshal(map[string]string{"omitted": fmt.Sprintf("detail of %d bytes exceeds %d", len(b), maxAuditDetail)})
	}
	return string(b), nil
}

// secretKeys are words in a detail key that say its value is a secret.
var secretKeys = []string{"secret", "password", "passphrase", "private", "credential"}

func namesSecret(key string) bool {
	k := strings.ToLower(key)
	if k == "token" {
		return true
	}
	for _, w := range secretKeys {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

func cleanDetail(key string, v any) (any, error) {
	if namesSecret(key) {
		return nil, fmt.Errorf("detail key %q names a secret; secrets are never recorded", key)
	}
	switch v := v.(type) {
	case string:
		if strings.HasPrefix(v, tokenPrefix) {
			return nil, fmt.Errorf("detail %q holds what looks like an API token; secrets are never recorded", key)
		}
		return clip(v, maxAuditText), nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for sk, sv := range v {
			c, err := cleanDetail(sk, sv)
			if err != nil {
				return nil, err
			}
			out[clip(sk, maxAuditText)] = c
		}
		return out, nil
	case map[string]string:
		m := make(map[string]any, len(v))
		for sk, sv := range v {
			m[sk] = sv
		}
		return cleanDetail(key, m)
	case []string:
		out := make([]any, len(v))
		for i, sv := range v {
			c, err := cleanDetail(key, sv)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return v, nil
}

// clip makes s valid UTF-8 of at most n bytes, cut on a character boundary
// and marked where cut: exports are JSON, which would replace invalid bytes
// and so change what was hashed.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// AuditQuery selects a page of the audit log.
type AuditQuery struct {
	// Limit is the page size: default 100, at most 1000.
	Limit int
	// Before pages newest first: entries below this seq; 0 starts at the
	// newest.
	Before int64
	// Forward pages oldest first instead, from the entry after After.
	Forward bool
	After   int64
}

// AuditPage is one page of the audit log.
type AuditPage struct {
	Entries []audit.Entry `json:"entries"`
	// NextBefore is the Before of the next older page; 0 when this page
	// reaches the first entry, and in Forward paging.
	NextBefore int64 `json:"next_before"`
	// NextAfter is, in Forward paging, the After of the next page.
	NextAfter int64 `json:"next_after,omitempty"`
}

// AuditLog returns one page of the audit log.
func (s *Service) AuditLog(ctx context.Context, q AuditQuery) (*AuditPage, error) {
	if q.Limit == 0 {
		q.Limit = 100
	}
	switch {
	case q.Limit < 0 || q.Limit > 1000:
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "limit must be 1-1000")
	case q.Before < 0 || q.After < 0:
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "before and after must not be negative")
	case q.Forward && q.Before != 0:
		return nil, gatehouse.Errorf(gatehouse.EINVALID, "give before (newest first) or after (oldest first), not both")
	}
	page := &AuditPage{}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if q.Forward {
			page.Entries, err = tx.AuditAfter(ctx, q.After, q.Limit)
		} else {
			page.Entries, err = tx.AuditBefore(ctx, q.Before, q.Limit)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	n := len(page.Entries)
	switch {
	case q.Forward && n > 0:
		page.NextAfter = page.Entries[n-1].Seq
	case q.Forward:
		page.NextAfter = q.After
	case n == q.Limit && page.Entries[n-1].Seq > 1:
		page.NextBefore = page.Entries[n-1].Seq
	}
	return page, nil
}

// AuditRefusedCredentials records that a request on route (its pattern,
// e.g. "POST /api/v1/session") was refused for bad credentials: a wrong or
// expired API token or session, or a bad device signature. A failed login
// is login.refused, anything else credentials.refused. At most one of
// these is written per source address a minute; the next one says how many
// were left out.
func (s *Service) AuditRefusedCredentials(ctx context.Context, route string) error {
	action, msg := ActionCredentialsRefused, "missing, invalid or expired credentials"
	switch {
	case route == "POST /api/v1/session":
		action, msg = ActionLoginRefused, "wrong user name, password or API token"
	case strings.Contains(route, " /device/"):
		msg = "device request not authenticated (bad signature, stale timestamp or replayed nonce)"
	}
	return s.auditLimited(ctx, refusedCredentials, action, route, gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "%s", msg))
}

// AuditAccessDenied records that an authenticated caller was refused on
// route for lack of a role, or a browser change without its CSRF token;
// reason is the refusal the caller got. Rate-limited as
// AuditRefusedCredentials, in a window of its own: a source refused both
// ways in a minute gets one entry of each.
func (s *Service) AuditAccessDenied(ctx context.Context, route string, reason error) error {
	if reason == nil {
		reason = gatehouse.Errorf(gatehouse.EFORBIDDEN, "access denied")
	}
	return s.auditLimited(ctx, deniedAccess, ActionAccessDenied, route, reason)
}

// AuditRefusedSignOn records a single sign-on that did not end in a
// session (the provider refused, the answer did not check out, no group
// gives a role), rate-limited as AuditRefusedCredentials and counted with
// them: the callback is as open to a flood as the login.
func (s *Service) AuditRefusedSignOn(ctx context.Context, route string, reason error) error {
	return s.auditLimited(ctx, refusedCredentials, ActionLoginRefused, route, reason)
}

// The kinds of refusal the limiter counts apart.
const (
	refusedCredentials = "credentials" // login.refused and credentials.refused
	deniedAccess       = "access"
)

func (s *Service) auditLimited(ctx context.Context, kind, action, route string, reason error) error {
	o := gatehouse.OriginOf(ctx)
	suppressed, shared, ok := s.refusals.admit(kind, o.Source, s.db.Now())
	if !ok {
		return nil
	}
	if o.Actor == "" {
		o.Actor = "anonymous"
		ctx = gatehouse.WithOrigin(ctx, o)
	}
	detail := map[string]any{"suppressed": suppressed}
	if shared {
		detail["sources_over_limit"] = true
	}
	return s.Audit(ctx, action, route, reason, detail)
}

// Limits of the refusal limiter: one entry per kind of refusal and source
// in each window, for at most maxRefusalSources sources at once.
const (
	refusalWindow     = time.Minute
	maxRefusalSources = 4096
)

// refusalLimiter keeps a flood of bad credentials from flooding the audit
// log (and the one database writer). Its zero value is ready.
type refusalLimiter struct {
	mu        sync.Mutex
	windows   map[refusalKey]*refusalCount
	lastPrune time.Time
}

type refusalKey struct{ kind, source string }

type refusalCount struct {
	start      time.Time
	suppressed int
}

// admit says whether a refusal (of kind, from source, at now) gets an
// entry, and how many of that kind from that source were left out since
// its last one. Once
// maxRefusalSources sources are being counted, newcomers share one window
// (shared is true), so many addresses cost bounded memory and at most one
// more entry a minute.
func (l *refusalLimiter) admit(kind, source string, now time.Time) (suppressed int, shared, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.windows == nil {
		l.windows = map[refusalKey]*refusalCount{}
	}
	k := refusalKey{kind, source}
	w := l.windows[k]
	if w == nil && len(l.windows) >= maxRefusalSources {
		l.prune(now)
		if len(l.windows) >= maxRefusalSources {
			k.source, shared = "*", true
			w = l.windows[k]
		}
	}
	if w != nil && now.Sub(w.start) < refusalWindow {
		w.suppressed++
		return 0, shared, false
	}
	if w != nil {
		suppressed = w.suppressed
	}
	l.windows[k] = &refusalCount{start: now}
	return suppressed, shared, true
}

// prune drops windows that have ended, at most once a second so a flood of
// new sources does not rescan the map on every refusal. Counts left out in
// a dropped window are lost, which only makes a count smaller.
func (l *refusalLimiter) prune(now time.Time) {
	if now.Sub(l.lastPrune) < time.Second {
		return
	}
	l.lastPrune = now
	for k, w := range l.windows {
		if now.Sub(w.start) >= refusalWindow {
			delete(l.windows, k)
		}
	}
}
