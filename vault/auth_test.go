package vault

import (
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/rest"
	"gatehouse/simulate"
)

// loginScript is a scripted Vault whose logins answer what answer says.
func loginScript(t *testing.T, answer func(w http.ResponseWriter, n int)) (*script, func() int, string) {
	var mu sync.Mutex
	logins := 0
	s, url := newScript(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if !strings.HasSuffix(r.URL.Path, "/login") {
			signed(w)
			return
		}
		mu.Lock()
		n := logins
		logins++
		mu.Unlock()
		answer(w, n)
	})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return logins
	}
	return s, count, url
}

func refuse(w http.ResponseWriter, _ int) {
	writeJSON(w, 400, map[string]any{"errors": []string{"invalid role or secret ID"}})
}

// After a failed login the client does not ask Vault again until the
// backoff has passed: 1 s, doubling, at most 5 minutes; a success resets it.
func TestLoginBackoff(t *testing.T) {
	clk := newClock()
	fail := true
	var mu sync.Mutex
	_, logins, url := loginScript(t, func(w http.ResponseWriter, n int) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			refuse(w, n)
			return
		}
		writeJSON(w, 200, map[string]any{"auth": map[string]any{"client_token": "tok", "lease_duration": 60}})
	})
	c := newClient(t, url, Config{AppRoleID: "r", AppRoleSecretID: "secret-id-x"}, clk)
	ctx := t.Context()
	wait := time.Second
	for i := range 12 {
		if _, err := c.Issue(ctx, "gw-01"); rest.StatusOf(err) != 400 {
			t.Fatalf("attempt %d: err %v, want the login's 400", i, err)
		}
		clk.Advance(wait - time.Millisecond)
		_, err := c.Issue(ctx, "gw-01")
		if rest.StatusOf(err) != 400 || !strings.Contains(err.Error(), "not logging in again") {
			t.Fatalf("attempt %d in backoff: err %v", i, err)
		}
		if logins() != i+1 {
			t.Fatalf("%d logins after %d failures: the backoff did not hold", logins(), i+1)
		}
		clk.Advance(time.Millisecond)
		wait = min(2*wait, 5*time.Minute)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if _, err := c.Issue(ctx, "gw-01"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute) // the 60 s lease is over
	mu.Lock()
	fail = true
	mu.Unlock()
	c.Issue(ctx, "gw-01")
	clk.Advance(time.Second) // reset to 1 s by the success
	n := logins()
	c.Issue(ctx, "gw-01")
	if logins() != n+1 {
		t.Errorf("after a success the backoff did not start again at 1 s")
	}
}

// Concurrent callers share one login attempt and its failure: one request.
func TestConcurrentCallersShareFailedLogin(t *testing.T) {
	release := make(chan struct{})
	_, logins, url := loginScript(t, func(w http.ResponseWriter, n int) {
		<-release
		refuse(w, n)
	})
	c := newClient(t, url, Config{AppRoleID: "r", AppRoleSecretID: "secret-id-x"}, newClock())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := c.Issue(t.Context(), "gw-01")
			errs <- err
		})
	}
	for logins() == 0 { // wait, without sleeping, for the one login to arrive
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if rest.StatusOf(err) != 400 {
			t.Errorf("err %v, want the shared 400", err)
		}
	}
	if n := logins(); n != 1 {
		t.Errorf("%d logins for 16 concurrent callers, want 1", n)
	}
}

// The rest layer never retries a login, not even a 503; and a Retry-After
// on a login stretches the backoff.
func TestLoginNotRetriedByRest(t *testing.T) {
	clk := newClock()
	_, logins, url := loginScript(t, func(w http.ResponseWriter, n int) {
		w.Header().Set("Retry-After", "30")
		writeJSON(w, 503, map[string]any{"errors": []string{"Vault is sealed"}})
	})
	c := newClient(t, url, Config{AppRoleID: "r", AppRoleSecretID: "secret-id-x"}, clk)
	_, err := c.Issue(t.Context(), "gw-01")
	if rest.StatusOf(err) != 503 || logins() != 1 {
		t.Fatalf("err %v after %d logins, want one 503", err, logins())
	}
	clk.Advance(29 * time.Second)
	c.Issue(t.Context(), "gw-01")
	if logins() != 1 {
		t.Errorf("logged in again before the 30 s Retry-After")
	}
	clk.Advance(time.Second)
	c.Issue(t.Context(), "gw-01")
	if logins() != 2 {
		t.Errorf("%d logins after the Retry-After, want 2", logins())
	}
}

// A token that is no longer fresh but still alive keeps being used while a
// failed renewal and login back off.
func TestAliveTokenOutlastsFailedLogin(t *testing.T) {
	clk := newClock()
	s, logins, url := loginScript(t, func(w http.ResponseWriter, n int) {
		if n == 0 {
			writeJSON(w, 200, map[string]any{"auth": map[string]any{"client_token": "tok-1", "lease_duration": 60, "renewable": false}})
			return
		}
		refuse(w, n)
	})
	c := newClient(t, url, Config{AppRoleID: "r", AppRoleSecretID: "secret-id-x"}, clk)
	// Past two thirds of the lease, then inside the failed refresh's backoff.
	for i, step := range []time.Duration{45 * time.Second, 500 * time.Millisecond, 0} {
		if _, err := c.Issue(t.Context(), "gw-01"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		clk.Advance(step)
	}
	if n := logins(); n != 2 {
		t.Errorf("%d logins, want the first and one failed refresh", n)
	}
	for _, r := range s.all() {
		if tok := r.Header.Get("X-Vault-Token"); !strings.HasSuffix(r.URL.Path, "/login") && tok != "tok-1" {
			t.Errorf("%s with token %q", r.URL.Path, tok)
		}
	}
}

// Vault may echo input in an error message; a secret never makes it into
// gatehouse's errors, not even inside the wrapped rest error.
func TestLoginErrorScrubsSecrets(t *testing.T) {
	_, _, url := loginScript(t, func(w http.ResponseWriter, n int) {
		writeJSON(w, 400, map[string]any{"errors": []string{`invalid secret_id "secret-id-x"`}})
	})
	c := newClient(t, url, Config{AppRoleID: "r", AppRoleSecretID: "secret-id-x"}, newClock())
	_, err := c.Issue(t.Context(), "gw-01")
	noSecrets(t, err, "secret-id-x")
	var re *rest.Error
	if !errors.As(err, &re) || strings.Contains(re.Message, "secret-id-x") || re.Status != 400 {
		t.Errorf("rest error %+v", re)
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("err %v, want the message with the secret redacted", err)
	}
}

// An echo at the end of a long message is redacted before the message is
// cut short, so no part of the secret escapes either.
func TestLoginErrorScrubsSecretsBeforeShortening(t *testing.T) {
	const secretID = "secret-id-0123456789abcdef"
	_, _, url := loginScript(t, func(w http.ResponseWriter, n int) {
		writeJSON(w, 400, map[string]any{"errors": []string{strings.Repeat("x", 270) + ` invalid secret_id "` + secretID + `"`}})
	})
	c := newClient(t, url, Config{AppRoleID: "r", AppRoleSecretID: secretID}, newClock())
	_, err := c.Issue(t.Context(), "gw-01")
	if err == nil {
		t.Fatal("login succeeded")
	}
	noSecrets(t, err, secretID[:10], secretID[10:])
}

// OpenBao locks an AppRole role id after 5 failed logins for 15 minutes
// (vault/request_handling.go); the right secret id then gets a bare 403,
// which the client explains.
func TestAppRoleLockoutExplained(t *testing.T) {
	clk := newClock()
	s := newSim(t, simOptions(clk))
	wrong := newClient(t, s.URL, Config{AppRoleID: "role-id-1", AppRoleSecretID: "wrong-secret-id"}, clk)
	for i := range simulate.VaultLockoutThreshold {
		if _, err := wrong.Check(t.Context()); rest.StatusOf(err) != 400 {
			t.Fatalf("failure %d: %v", i, err)
		}
		clk.Advance(loginBackoffMax) // past any backoff
	}
	if len(s.LockedOut()) != 1 {
		t.Fatalf("locked out: %v", s.LockedOut())
	}
	right := newClient(t, s.URL, Config{AppRoleID: "role-id-1", AppRoleSecretID: "secret-id-s3cret"}, clk)
	_, err := right.Check(t.Context())
	want := "vault: AppRole login refused (403): the role may be locked out after failed logins; see sys/locked-users " +
		"(unlock with sys/locked-users/<mount accessor>/unlock/<role_id>)"
	if rest.StatusOf(err) != 403 || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err %v\nwant it to start %q", err, want)
	}
	noSecrets(t, err, "secret-id-s3cret", "wrong-secret-id", "role-id-1")
	clk.Advance(simulate.VaultLockoutDuration)
	if _, err := right.Check(t.Context()); err != nil {
		t.Errorf("after the lockout: %v", err)
	}
}
