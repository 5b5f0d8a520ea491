package vault

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gatehouse/rest"
)

// loginError is a login Vault refused, with what to do about it. It wraps
// the rest error, so rest.StatusOf still gives the status.
type loginError struct {
	method string
	hint   string
	err    error
}

func (e *loginError) Error() string {
	status := rest.StatusOf(e.err)
	if status == 0 {
		return fmt.Sprintf("vault: %s login failed: %v", e.method, e.err)
	}
	msg := fmt.Sprintf("vault: %s login refused (%d)", e.method, status)
	if e.hint != "" {
		msg += ": " + e.hint
	}
	if m := messageOf(e.err); m != "" {
		msg += " (Vault said: " + m + ")"
	}
	return msg
}

func (e *loginError) Unwrap() error { return e.err }

// loginError explains a failed login. OpenBao answers a locked-out AppRole
// with a bare 403 "permission denied" (vault/request_handling.go
// handleLoginRequest), the same as for a mount that does not exist.
func (a *auth) loginError(err error) error {
	e := &loginError{method: a.method, err: err}
	switch s := rest.StatusOf(err); {
	case s == http.StatusForbidden && a.method == "AppRole":
		e.hint = "the role may be locked out after failed logins; see sys/locked-users " +
			"(unlock with sys/locked-users/<mount accessor>/unlock/<role_id>), and check the AppRole mount path"
	case s == http.StatusForbidden:
		e.hint = "Vault did not accept the service account token; check the Kubernetes auth role's bound service accounts and namespaces"
	case s == http.StatusBadRequest && a.method == "AppRole":
		e.hint = "check the role id and secret id (by default OpenBao locks the role out for 15 minutes after 5 failed logins)"
	case s == http.StatusBadRequest:
		e.hint = "check the Kubernetes auth role name"
	}
	return e
}

// backoffError is what callers get while a failed login backs off.
type backoffError struct {
	until time.Time
	wait  time.Duration
	last  error
}

func (e *backoffError) Error() string {
	return fmt.Sprintf("%v (not logging in again for %s, until %s)", e.last, e.wait.Round(time.Second), e.until.Format(time.TimeOnly))
}

func (e *backoffError) Unwrap() error { return e.last }

// redact removes secrets from an error before it goes anywhere: Vault may
// echo input in a message (OpenBao's AppRole answers "invalid secret_id
// %q" in one path).
func redact(err error, secrets []string) error {
	if err == nil || !containsAny(err.Error(), secrets) {
		return err
	}
	var re *rest.Error
	if !errors.As(err, &re) {
		return errors.New(scrub(err.Error(), secrets))
	}
	clean := *re
	clean.Message = scrub(re.Message, secrets)
	if re.Err != nil {
		clean.Err = errors.New(scrub(re.Err.Error(), secrets))
	}
	return &clean
}

func containsAny(s string, secrets []string) bool {
	for _, x := range secrets {
		if x != "" && strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func scrub(s string, secrets []string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "[redacted]")
		}
	}
	return s
}
