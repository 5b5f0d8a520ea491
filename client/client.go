// Package client is the Go client of gatehouse's operator REST API, used by
// the CLI, by automation and by tests.
package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"gatehouse"
)

// DefaultTimeout bounds each API call unless WithTimeout says otherwise.
const DefaultTimeout = 30 * time.Second

// maxResponse bounds what is read from the server; a full page of 1000
// devices is well under a few MiB.
const maxResponse = 32 << 20

// Client talks to one gatehouse server with one API token.
type Client struct {
	base      string // scheme://host[/prefix], no trailing slash
	token     string
	http      *http.Client
	timeout   time.Duration
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through h (proxies, TLS settings, tests).
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) { c.http = h }
}

// WithUserAgent replaces the default "gatehouse-cli/<version>" User-Agent.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// WithTimeout bounds each call; 0 leaves only the caller's context.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) { c.timeout = d }
}

// New returns a client of the server at baseURL, e.g. "https://gatehouse.example.com"
// (a path prefix is kept, for servers behind a reverse proxy).
func New(baseURL, token string, opts ...Option) (*Client, error) {
	base, err := parseBase(baseURL)
	if err != nil {
		return nil, err
	}
	if err := checkToken(token); err != nil {
		return nil, err
	}
	c := &Client{
		base:      base,
		token:     token,
		http:      http.DefaultClient,
		timeout:   DefaultTimeout,
		userAgent: "gatehouse-cli/" + version(),
	}
	for _, opt := range opts {
		opt(c)
	}
	return c, nil
}

func parseBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("invalid server URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("invalid server URL %q: want http(s)://host[:port]", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("invalid server URL %q: no credentials, query or fragment allowed", u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// checkToken refuses what net/http would refuse later with a puzzling
// error. The token itself is never part of a message.
func checkToken(token string) error {
	if token == "" {
		return gatehouse.Errorf(gatehouse.EUNAUTHORIZED, "missing API token")
	}
	for _, r := range token {
		if r <= ' ' || r == 0x7f {
			return gatehouse.Errorf(gatehouse.EINVALID, "API token contains spaces or control characters")
		}
	}
	return nil
}

// version is the module version the binary was built from, so the server's
// logs tell CLI releases apart.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// ListOptions selects a page of devices; zero values mean "server default".
type ListOptions struct {
	State gatehouse.State
	// Search matches name, hostname, MAC, fingerprint and the verification
	// code however it is spaced.
	Search string
	Seen   string // "active" or "silent"
	// Sort is name, state, last_seen or hub, with a leading '-' for
	// descending; empty is newest first.
	Sort   string
	Limit  int
	Offset int
	// Counts asks for DeviceList.Counts.
	Counts bool
}

// DeviceList is one page of devices and how many match in all.
type DeviceList struct {
	Devices []*gatehouse.Device `json:"devices"`
	Total   int                 `json:"total"`
	// PendingTotal and PendingCap are the pending queue's size and its cap;
	// past the cap, gateways not seen before are refused.
	PendingTotal int `json:"pending_total"`
	PendingCap   int `json:"pending_cap"`
	// Counts, with ListOptions.Counts, is how many match the search in
	// each state, whatever ListOptions.State says.
	Counts map[gatehouse.State]int `json:"counts,omitempty"`
}

// ListDevices returns a page of devices, newest first unless opts.Sort
// says otherwise.
func (c *Client) ListDevices(ctx context.Context, opts ListOptions) (*DeviceList, error) {
	q := opts.filter()
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Offset != 0 {
		q.Set("offset", strconv.Itoa(opts.Offset))
	}
	if opts.Counts {
		q.Set("counts", "true")
	}
	var out DeviceList
	if err := c.do(ctx, http.MethodGet, "/api/v1/devices", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// filter is the options' filter and order as query parameters.
func (opts ListOptions) filter() url.Values {
	q := url.Values{}
	setParam(q, "state", string(opts.State))
	setParam(q, "q", opts.Search)
	setParam(q, "seen", opts.Seen)
	setParam(q, "sort", opts.Sort)
	return q
}

func setParam(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}

// Device returns one device with its provisioning steps.
func (c *Client) Device(ctx context.Context, id string) (*gatehouse.Device, error) {
	return c.deviceCall(ctx, http.MethodGet, id, "", nil)
}

// Events returns a device's timeline, oldest first.
func (c *Client) Events(ctx context.Context, id string) ([]gatehouse.Event, error) {
	p, err := devicePath(id, "/events")
	if err != nil {
		return nil, err
	}
	var out struct {
		Events []gatehouse.Event `json:"events"`
	}
	if err := c.do(ctx, http.MethodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Events, nil
}

// Approve names a pending device and starts its provisioning. Labels are
// optional. A re-key candidate is approved without a name, and the device
// returned is the gateway it re-keys.
func (c *Client) Approve(ctx context.Context, id, name string, labels map[string]string) (*gatehouse.Device, error) {
	body := struct {
		Name   string            `json:"name,omitempty"`
		Labels map[string]string `json:"labels,omitempty"`
	}{name, labels}
	return c.deviceCall(ctx, http.MethodPost, id, "/approve", body)
}

// Retry restarts a stalled device's IoT Hub follow-up, or runs a failed
// step now.
func (c *Client) Retry(ctx context.Context, id string) (*gatehouse.Device, error) {
	return c.deviceCall(ctx, http.MethodPost, id, "/retry", nil)
}

// Restore moves a dismissed device back to pending.
func (c *Client) Restore(ctx context.Context, id string) (*gatehouse.Device, error) {
	return c.deviceCall(ctx, http.MethodPost, id, "/restore", nil)
}

// Edit renames an approved device, replaces its labels, or both; a nil
// field is left as it is.
func (c *Client) Edit(ctx context.Context, id string, name *string, labels *map[string]string) (*gatehouse.Device, error) {
	body := struct {
		Name   *string            `json:"name,omitempty"`
		Labels *map[string]string `json:"labels,omitempty"`
	}{name, labels}
	return c.deviceCall(ctx, http.MethodPatch, id, "", body)
}

// Dismiss refuses a pending device.
func (c *Client) Dismiss(ctx context.Context, id string) (*gatehouse.Device, error) {
	return c.deviceCall(ctx, http.MethodPost, id, "/dismiss", nil)
}

func (c *Client) deviceCall(ctx context.Context, method, id, suffix string, in any) (*gatehouse.Device, error) {
	p, err := devicePath(id, suffix)
	if err != nil {
		return nil, err
	}
	var d gatehouse.Device
	if err := c.do(ctx, method, p, nil, in, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// devicePath escapes id as one path segment. Dots are escaped too, since a
// bare "." or ".." segment would be resolved away and hit another route.
func devicePath(id, suffix string) (string, error) {
	if id == "" {
		return "", gatehouse.Errorf(gatehouse.EINVALID, "device ID is required")
	}
	return "/api/v1/devices/" + segment(id) + suffix, nil
}

// TokenSpec is a token to create. A nil ExpiresAt takes the server's
// default life unless NeverExpires says the token must not expire.
type TokenSpec struct {
	Name         string         `json:"name"`
	Role         gatehouse.Role `json:"role"`
	ExpiresAt    *time.Time     `json:"expires_at,omitempty"`
	NeverExpires bool           `json:"never_expires,omitempty"`
}

// CreatedToken is a new token with its secret, which the server shows once.
type CreatedToken struct {
	Token  *gatehouse.Token `json:"token"`
	Secret string           `json:"secret"`
}

// Tokens lists every API token (admin only); never a secret.
func (c *Client) Tokens(ctx context.Context) ([]*gatehouse.Token, error) {
	var out struct {
		Tokens []*gatehouse.Token `json:"tokens"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, &out)
	return out.Tokens, err
}

// CreateToken makes an API token (admin only).
func (c *Client) CreateToken(ctx context.Context, spec TokenSpec) (*CreatedToken, error) {
	var out CreatedToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, spec, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeToken makes the token with this id stop working (admin only).
func (c *Client) RevokeToken(ctx context.Context, id string) (*gatehouse.Token, error) {
	var out gatehouse.Token
	if err := c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+segment(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UserSpec is a local user to create.
type UserSpec struct {
	Name     string         `json:"name"`
	Role     gatehouse.Role `json:"role"`
	Password string         `json:"password"`
}

// UserChange is what to change about a user; nil fields stay.
type UserChange struct {
	Role     *gatehouse.Role `json:"role,omitempty"`
	Password *string         `json:"password,omitempty"`
	Disabled *bool           `json:"disabled,omitempty"`
}

// Users lists every user (admin only).
func (c *Client) Users(ctx context.Context) ([]*gatehouse.User, error) {
	var out struct {
		Users []*gatehouse.User `json:"users"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/users", nil, nil, &out)
	return out.Users, err
}

// CreateUser makes a local user (admin only).
func (c *Client) CreateUser(ctx context.Context, spec UserSpec) (*gatehouse.User, error) {
	var out gatehouse.User
	if err := c.do(ctx, http.MethodPost, "/api/v1/users", nil, spec, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateUser changes a user's role, password or disabled flag (admin only).
func (c *Client) UpdateUser(ctx context.Context, name string, ch UserChange) (*gatehouse.User, error) {
	var out gatehouse.User
	if err := c.do(ctx, http.MethodPatch, "/api/v1/users/"+segment(name), nil, ch, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteUser removes a user (admin only).
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/users/"+segment(name), nil, nil, nil)
}

// segment escapes s as one path segment, dots included (see devicePath).
func segment(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ".", "%2E")
}
