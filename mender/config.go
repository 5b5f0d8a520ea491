package mender

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config says which Mender server to manage and how to authenticate.
type Config struct {
	// URL is the server's base URL, e.g. https://hosted.mender.io.
	URL string
	// Token is a personal access token; the way a service should log in.
	Token string
	// User and Password are the alternative to Token: the client logs in
	// with them and logs in again before the JWT expires or when it is
	// refused.
	User, Password string
	// Timeout bounds one attempt of one call; default 30 s.
	Timeout time.Duration
	// RateLimit caps calls per minute, logins included; 0 means no limit.
	RateLimit int
	// HTTP sends the requests; nil means one on rest.Transport.
	HTTP *http.Client
	// UserAgent names the caller; default "gatehouse".
	UserAgent string
	// Logger receives a debug line per HTTP attempt (method, path, status);
	// nil logs nothing.
	Logger *slog.Logger
}

// Validate reports every problem with the configuration at once. Its
// messages never contain the token or the password.
func (c Config) Validate() error {
	problems := append(c.urlProblems(), c.credentialProblems()...)
	if c.Timeout < 0 {
		problems = append(problems, "Timeout must not be negative")
	}
	if c.RateLimit < 0 {
		problems = append(problems, "RateLimit must not be negative (0 means no limit)")
	}
	if len(problems) > 0 {
		return fmt.Errorf("mender: invalid config: %s", strings.Join(problems, "; "))
	}
	return nil
}

func (c Config) urlProblems() []string {
	if c.URL == "" {
		return []string{"URL is required (e.g. https://hosted.mender.io)"}
	}
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		// url's own error repeats the URL, which may hold a password.
		return []string{"URL does not parse"}
	case u.User != nil:
		return []string{"URL must not carry credentials; use Token, or User and Password"}
	case (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return []string{fmt.Sprintf("URL must be http:// or https:// with a host (e.g. https://hosted.mender.io), got %q", c.URL)}
	}
	return nil
}

func (c Config) credentialProblems() []string {
	login := c.User != "" || c.Password != ""
	switch {
	case c.Token != "" && login:
		return []string{"set either Token or User and Password, not both"}
	case c.Token == "" && !login:
		return []string{"credentials are required: a personal access Token, or User and Password"}
	case c.Token == "" && (c.User == "" || c.Password == ""):
		return []string{"User and Password must be set together"}
	}
	return nil
}
