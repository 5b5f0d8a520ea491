package provision_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/store"
)

// identityService is a Service with no backends and a hand-moved clock:
// the identity rules need neither jobs nor time passing by itself.
func identityService(t *testing.T) (*provision.Service, *store.DB, *testClock) {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "gatehouse.db"))
	clock := &testClock{now: time.Now().UTC()}
	db.Now = clock.Now
	svc, err := provision.New(db, provision.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return svc, db, clock
}

func wantRefusal(t *testing.T, err error, code, fragment string) {
	t.Helper()
	if gatehouse.ErrorCode(err) != code || !strings.Contains(gatehouse.ErrorMessage(err), fragment) {
		t.Fatalf("err = %v (code %s), want %s containing %q", err, gatehouse.ErrorCode(err), code, fragment)
	}
}

func TestTokenExpires(t *testing.T) {
	t.Parallel()
	svc, _, clock := identityService(t)
	ctx := context.Background()
	at := clock.Now().Add(time.Hour)
	secret, tok, err := svc.CreateToken(ctx, provision.TokenSpec{Name: "ci", Role: gatehouse.RoleOperator, Expires: &at})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := svc.Authenticate(ctx, secret); err != nil || p.Name != "ci" || p.Role != gatehouse.RoleOperator || p.ID != tok.ID {
		t.Fatalf("before expiry: %+v, %v", p, err)
	}
	clock.Add(time.Hour)
	_, err = svc.Authenticate(ctx, secret)
	wantRefusal(t, err, gatehouse.EUNAUTHORIZED, "expired")
	if strings.Contains(err.Error(), secret) {
		t.Fatal("the error carries the secret")
	}
}

func TestTokenRevokedEndsItsSessions(t *testing.T) {
	t.Parallel()
	svc, _, _ := identityService(t)
	ctx := context.Background()
	if _, _, err := svc.CreateToken(ctx, provision.TokenSpec{Name: "root", Role: gatehouse.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	secret, tok, err := svc.CreateToken(ctx, provision.TokenSpec{Name: "ci", Role: gatehouse.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	cookie, _, err := svc.LoginToken(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := svc.RevokeToken(ctx, tok.ID)
	if err != nil || revoked.RevokedAt == nil {
		t.Fatalf("revoke: %+v, %v", revoked, err)
	}
	_, err = svc.Authenticate(ctx, secret)
	wantRefusal(t, err, gatehouse.EUNAUTHORIZED, "revoked")
	_, err = svc.SessionFor(ctx, cookie)
	wantRefusal(t, err, gatehouse.EUNAUTHORIZED, "log in again")
	_, err = svc.RevokeToken(ctx, tok.ID)
	wantRefusal(t, err, gatehouse.ENOTFOUND, "no live token")
	// The name is free again once its token is revoked, and both stay listed.
	if _, _, err := svc.CreateToken(ctx, provision.TokenSpec{Name: "ci", Role: gatehouse.RoleViewer}); err != nil {
		t.Fatal(err)
	}
	ts, _ := svc.Tokens(ctx)
	if len(ts) != 3 {
		t.Fatalf("tokens listed: %d, want 3", len(ts))
	}
}

func TestTokenRules(t *testing.T) {
	t.Parallel()
	svc, _, clock := identityService(t)
	ctx := context.Background()
	past := clock.Now().Add(-time.Second)
	for _, tc := range []struct {
		spec          provision.TokenSpec
		code, message string
	}{
		{provision.TokenSpec{Name: "", Role: gatehouse.RoleAdmin}, gatehouse.EINVALID, "1-100"},
		{provision.TokenSpec{Name: "x\x00y", Role: gatehouse.RoleAdmin}, gatehouse.EINVALID, "printable"},
		{provision.TokenSpec{Name: "a", Role: "root"}, gatehouse.EINVALID, "role"},
		{provision.TokenSpec{Name: "a", Role: gatehouse.RoleAdmin, Expires: &past}, gatehouse.EINVALID, "past"},
	} {
		_, _, err := svc.CreateToken(ctx, tc.spec)
		wantRefusal(t, err, tc.code, tc.message)
	}
	if _, _, err := svc.CreateToken(ctx, provision.TokenSpec{Name: "a", Role: gatehouse.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	_, _, err := svc.CreateToken(ctx, provision.TokenSpec{Name: "a", Role: gatehouse.RoleViewer})
	wantRefusal(t, err, gatehouse.ECONFLICT, "exists already")
}

func TestPasswordLogin(t *testing.T) {
	t.Parallel()
	svc, _, _ := identityService(t)
	ctx := context.Background()
	const pw = "correct horse battery"
	if _, _, err := svc.CreateToken(ctx, provision.TokenSpec{Name: "root", Role: gatehouse.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	u, err := svc.CreateUser(ctx, provision.UserSpec{Name: "alice", Role: gatehouse.RoleOperator, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	cookie, ss, err := svc.LoginPassword(ctx, "alice", pw)
	if err != nil || ss.Principal != (gatehouse.Principal{Kind: gatehouse.PrincipalUser, ID: u.ID, Name: "alice", Role: gatehouse.RoleOperator}) {
		t.Fatalf("login: %+v, %v", ss, err)
	}
	// A wrong password and an unknown user get the same answer.
	_, _, errPw := svc.LoginPassword(ctx, "alice", pw+"!")
	_, _, errUser := svc.LoginPassword(ctx, "bob", pw)
	wantRefusal(t, errPw, gatehouse.EUNAUTHORIZED, "wrong user name or password")
	if errPw.Error() != errUser.Error() {
		t.Fatalf("answers differ: %q vs %q", errPw, errUser)
	}
	// A role change applies to the open session at once.
	viewer := gatehouse.RoleViewer
	if _, err := svc.UpdateUser(ctx, "alice", provision.UserChange{Role: &viewer}); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.SessionFor(ctx, cookie); err != nil || got.Principal.Role != gatehouse.RoleViewer {
		t.Fatalf("session after the role change: %+v, %v", got, err)
	}
	// Disabling ends the session and refuses the password.
	yes := true
	if _, err := svc.UpdateUser(ctx, "alice", provision.UserChange{Disabled: &yes}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.SessionFor(ctx, cookie)
	wantRefusal(t, err, gatehouse.EUNAUTHORIZED, "log in again")
	_, _, err = svc.LoginPassword(ctx, "alice", pw)
	wantRefusal(t, err, gatehouse.EUNAUTHORIZED, "wrong user name or password")
}

func TestNewPasswordReplacesOld(t *testing.T) {
	t.Parallel()
	svc, _, _ := identityService(t)
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, provision.UserSpec{Name: "alice", Role: gatehouse.RoleAdmin, Password: "the first password"}); err != nil {
		t.Fatal(err)
	}
	_, err := svc.CreateUser(ctx, provision.UserSpec{Name: "bob", Role: gatehouse.RoleAdmin, Password: "short"})
	wantRefusal(t, err, gatehouse.EINVALID, "12 to 256")
	_, err = svc.CreateUser(ctx, provision.UserSpec{Name: "alice", Role: gatehouse.RoleAdmin, Password: "another password"})
	wantRefusal(t, err, gatehouse.ECONFLICT, "exists already")
	cookie, _, err := svc.LoginPassword(ctx, "alice", "the first password")
	if err != nil {
		t.Fatal(err)
	}
	pw := "the second password"
	if _, err := svc.UpdateUser(ctx, "alice", provision.UserChange{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	_, err = svc.SessionFor(ctx, cookie)
	wantRefusal(t, err, gatehouse.EUNAUTHORIZED, "log in again")
	if _, _, err := svc.LoginPassword(ctx, "alice", "the first password"); err == nil {
		t.Fatal("the old password still works")
	}
	if _, _, err := svc.LoginPassword(ctx, "alice", pw); err != nil {
		t.Fatal(err)
	}
}

func TestLastAdminKept(t *testing.T) {
	t.Parallel()
	svc, _, _ := identityService(t)
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, provision.UserSpec{Name: "root", Role: gatehouse.RoleAdmin, Password: "a long password"}); err != nil {
		t.Fatal(err)
	}
	err := svc.DeleteUser(ctx, "root")
	wantRefusal(t, err, gatehouse.ECONFLICT, "no enabled admin")
	op := gatehouse.RoleOperator
	_, err = svc.UpdateUser(ctx, "root", provision.UserChange{Role: &op})
	wantRefusal(t, err, gatehouse.ECONFLICT, "no enabled admin")
	_, tok, err := svc.CreateToken(ctx, provision.TokenSpec{Name: "break-glass", Role: gatehouse.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteUser(ctx, "root"); err != nil {
		t.Fatalf("with an admin token left, delete = %v", err)
	}
	_, err = svc.RevokeToken(ctx, tok.ID)
	wantRefusal(t, err, gatehouse.ECONFLICT, "no enabled admin")
	if us, _ := svc.Users(ctx); len(us) != 0 {
		t.Fatalf("users left: %d", len(us))
	}
}

func TestExternalLogin(t *testing.T) {
	t.Parallel()
	svc, _, _ := identityService(t)
	ctx := context.Background()
	if _, err := svc.CreateUser(ctx, provision.UserSpec{Name: "alice", Role: gatehouse.RoleAdmin, Password: "a long password"}); err != nil {
		t.Fatal(err)
	}
	id := provision.ExternalIdentity{Issuer: "https://idp.test", Subject: "u-1", Name: "alice", Role: gatehouse.RoleViewer}
	_, ss, err := svc.LoginExternal(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The local alice keeps her name; the provider's alice is told apart.
	if ss.Principal.Name == "alice" || !strings.HasPrefix(ss.Principal.Name, "alice#") || ss.Principal.Role != gatehouse.RoleViewer {
		t.Fatalf("first SSO login: %+v", ss.Principal)
	}
	id.Role = gatehouse.RoleOperator
	_, again, err := svc.LoginExternal(ctx, id)
	if err != nil || again.Principal.ID != ss.Principal.ID || again.Principal.Role != gatehouse.RoleOperator {
		t.Fatalf("second login: %+v, %v", again, err)
	}
	// An SSO user has no password here and takes no role from an admin.
	pw := "a long password"
	_, err = svc.UpdateUser(ctx, again.Principal.Name, provision.UserChange{Password: &pw})
	wantRefusal(t, err, gatehouse.EINVALID, "single sign-on")
	_, _, err = svc.LoginPassword(ctx, again.Principal.Name, "")
	wantRefusal(t, err, gatehouse.EUNAUTHORIZED, "wrong user name or password")
	id.Role = ""
	_, _, err = svc.LoginExternal(ctx, id)
	wantRefusal(t, err, gatehouse.EFORBIDDEN, "none of your groups")
}

// Every admin change and login leaves an entry naming who did it; a
// refused one leaves a refusal; no entry holds a secret.
func TestIdentityChangesAudited(t *testing.T) {
	t.Parallel()
	svc, _, _ := identityService(t)
	ctx := gatehouse.WithOrigin(context.Background(), gatehouse.Origin{Actor: "user:root", Source: "192.0.2.9"})
	const pw = "a long enough password"
	secret, tok, err := svc.CreateToken(ctx, provision.TokenSpec{Name: "ci", Role: gatehouse.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateUser(ctx, provision.UserSpec{Name: "bob", Role: gatehouse.RoleOperator, Password: pw}); err != nil {
		t.Fatal(err)
	}
	newPw := "another long password"
	if _, err := svc.UpdateUser(ctx, "bob", provision.UserChange{Password: &newPw}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.LoginPassword(ctx, "bob", newPw); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RevokeToken(ctx, tok.ID); err == nil {
		t.Fatal("the last admin token was revoked")
	}
	page, err := svc.AuditLog(ctx, provision.AuditQuery{Limit: 100, Forward: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range page.Entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Target+" "+strings.SplitN(e.Result, ":", 2)[0])
		for _, s := range []string{secret, pw, newPw} {
			if strings.Contains(e.Detail+e.Result+e.Target, s) {
				t.Errorf("entry %d holds a secret", e.Seq)
			}
		}
		if e.Source != "192.0.2.9" {
			t.Errorf("entry %d source %q", e.Seq, e.Source)
		}
	}
	want := []string{
		"user:root token.create ci ok",
		"user:root user.create bob ok",
		"user:root user.update bob ok",
		"user:bob session.login bob ok",
		"user:root user.delete bob ok",
		"user:root token.revoke " + tok.ID + " refused",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
