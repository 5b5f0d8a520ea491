package store_test

// Conformance tests for what operators log in with: users, API tokens and
// browser sessions, plus the server's own secrets. Registered in
// runConformance, so both dialects run them.

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/store"
)

func mustUser(t *testing.T, db *store.DB, id, name string, role gatehouse.Role) *store.UserRecord {
	t.Helper()
	u := &store.UserRecord{User: gatehouse.User{ID: id, Name: name, Role: role, Source: gatehouse.SourceLocal}, PasswordHash: "$argon2id$x"}
	inTx(t, db, func(tx *store.Tx) error { return tx.CreateUser(t.Context(), u) })
	return u
}

func session(t *testing.T, db *store.DB, hash string) (*store.Session, error) {
	t.Helper()
	var s *store.Session
	err := db.InTx(t.Context(), func(tx *store.Tx) error {
		var err error
		s, err = tx.SessionByHash(t.Context(), hash)
		return err
	})
	return s, err
}

func testUsers(t *testing.T, db *store.DB, _ *clock) {
	ctx := t.Context()
	mustUser(t, db, "u1", "alice", gatehouse.RoleAdmin)
	oidc := &store.UserRecord{User: gatehouse.User{ID: "u2", Name: "bob", Role: gatehouse.RoleViewer, Source: gatehouse.SourceOIDC}, Subject: "https://idp|42"}
	inTx(t, db, func(tx *store.Tx) error { return tx.CreateUser(ctx, oidc) })
	wantUnique(t, txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.CreateUser(ctx, &store.UserRecord{User: gatehouse.User{ID: "u3", Name: "alice", Role: gatehouse.RoleViewer, Source: gatehouse.SourceLocal}})
	}))
	wantUnique(t, txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.CreateUser(ctx, &store.UserRecord{User: gatehouse.User{ID: "u4", Name: "carol", Role: gatehouse.RoleViewer, Source: gatehouse.SourceOIDC}, Subject: "https://idp|42"})
	}))
	inTx(t, db, func(tx *store.Tx) error {
		u, err := tx.UserBySubject(ctx, "https://idp|42")
		if err != nil || u.ID != "u2" || u.Name != "bob" || u.Subject != "https://idp|42" {
			t.Errorf("UserBySubject = %+v, %v", u, err)
		}
		a, err := tx.UserByName(ctx, "alice")
		if err != nil || a.PasswordHash != "$argon2id$x" || !a.CreatedAt.Equal(at(0)) || a.Disabled {
			t.Errorf("UserByName(alice) = %+v, %v", a, err)
		}
		if n, err := tx.LiveAdmins(ctx); err != nil || n != 1 {
			t.Errorf("LiveAdmins = %d, %v; want 1", n, err)
		}
		a.Disabled = true
		if err := tx.UpdateUser(ctx, a); err != nil {
			return err
		}
		if n, _ := tx.LiveAdmins(ctx); n != 0 {
			t.Errorf("LiveAdmins after disabling = %d, want 0", n)
		}
		users, err := tx.Users(ctx)
		if err != nil || len(users) != 2 || users[0].Name != "alice" || !users[0].Disabled || users[1].Name != "bob" {
			t.Errorf("Users = %+v, %v", users, err)
		}
		return nil
	})
	wantCode(t, txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.UserByName(ctx, "nobody")
		return err
	}), gatehouse.ENOTFOUND)
}

// testSessions: a session stands for a user or a token while both are live,
// and goes with a disabled user, a revoked token, a deleted user and expiry.
func testSessions(t *testing.T, db *store.DB, clk *clock) {
	ctx := t.Context()
	u := mustUser(t, db, "u1", "alice", gatehouse.RoleOperator)
	tok := &gatehouse.Token{ID: "tok1", Name: "ci", Role: gatehouse.RoleViewer}
	inTx(t, db, func(tx *store.Tx) error {
		if err := tx.CreateToken(ctx, tok, "tokhash"); err != nil {
			return err
		}
		for hash, p := range map[string]gatehouse.Principal{
			"s-user":  {Kind: gatehouse.PrincipalUser, ID: "u1"},
			"s-user2": {Kind: gatehouse.PrincipalUser, ID: "u1"},
			"s-token": {Kind: gatehouse.PrincipalToken, ID: "tok1"},
			"s-short": {Kind: gatehouse.PrincipalToken, ID: "tok1"},
		} {
			exp := t0.Add(time.Hour)
			if hash == "s-short" {
				exp = t0.Add(time.Minute)
			}
			if err := tx.CreateSession(ctx, hash, p, exp); err != nil {
				return err
			}
		}
		return nil
	})
	s, err := session(t, db, "s-user")
	want := gatehouse.Principal{Kind: gatehouse.PrincipalUser, ID: "u1", Name: "alice", Role: gatehouse.RoleOperator}
	if err != nil || s.Principal != want || !s.Expires.Equal(at(time.Hour)) {
		t.Fatalf("user session = %+v, %v; want %+v", s, err, want)
	}
	if s, err := session(t, db, "s-token"); err != nil || s.Principal.Kind != gatehouse.PrincipalToken || s.Principal.Name != "ci" {
		t.Fatalf("token session = %+v, %v", s, err)
	}
	wantCode(t, txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.CreateSession(ctx, "bad", gatehouse.Principal{Kind: "robot", ID: "x"}, t0)
	}), gatehouse.EINTERNAL)

	clk.Set(t0.Add(2 * time.Minute))
	if _, err := session(t, db, "s-short"); !isNotFound(err) {
		t.Errorf("expired session: %v, want not found", err)
	}
	inTx(t, db, func(tx *store.Tx) error {
		if n, err := tx.DeleteExpiredSessions(ctx); err != nil || n != 1 {
			t.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
		}
		if err := tx.RevokeToken(ctx, "tok1"); err != nil {
			return err
		}
		wantCode(t, tx.RevokeToken(ctx, "tok1"), gatehouse.ENOTFOUND)
		return tx.DeleteSession(ctx, "s-user2")
	})
	for _, h := range []string{"s-token", "s-user2"} {
		if _, err := session(t, db, h); !isNotFound(err) {
			t.Errorf("session %s: %v, want not found", h, err)
		}
	}
	u.Disabled = true
	inTx(t, db, func(tx *store.Tx) error { return tx.UpdateUser(ctx, u) })
	if _, err := session(t, db, "s-user"); !isNotFound(err) {
		t.Errorf("disabled user's session: %v, want not found", err)
	}
}

// testTokenLiveName: a name is unique among live tokens only.
func testTokenLiveName(t *testing.T, db *store.DB, clk *clock) {
	ctx := t.Context()
	exp := at(time.Hour)
	inTx(t, db, func(tx *store.Tx) error {
		return tx.CreateToken(ctx, &gatehouse.Token{ID: "a", Name: "deploy", Role: gatehouse.RoleAdmin, CreatedBy: "user:alice", ExpiresAt: &exp}, "h-a")
	})
	wantUnique(t, txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.CreateToken(ctx, &gatehouse.Token{ID: "b", Name: "deploy", Role: gatehouse.RoleViewer}, "h-b")
	}))
	inTx(t, db, func(tx *store.Tx) error {
		if n, _ := tx.LiveAdmins(ctx); n != 1 {
			t.Errorf("LiveAdmins = %d, want 1", n)
		}
		if err := tx.RevokeToken(ctx, "a"); err != nil {
			return err
		}
		if err := tx.CreateToken(ctx, &gatehouse.Token{ID: "b", Name: "deploy", Role: gatehouse.RoleViewer}, "h-b"); err != nil {
			return err
		}
		got, err := tx.TokenByID(ctx, "a")
		if err != nil || got.RevokedAt == nil || !got.RevokedAt.Equal(at(0)) || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || got.CreatedBy != "user:alice" {
			t.Errorf("TokenByID(a) = %+v, %v", got, err)
		}
		all, err := tx.Tokens(ctx)
		if err != nil || len(all) != 2 {
			t.Errorf("Tokens = %+v, %v", all, err)
		}
		return nil
	})
}

// testServerSecret: the first secret stored under a name is kept; later
// callers get it back rather than their own.
func testServerSecret(t *testing.T, db *store.DB, _ *clock) {
	first, err := db.ServerSecret(t.Context(), "codes", []byte("one"))
	if err != nil || !bytes.Equal(first, []byte("one")) {
		t.Fatalf("ServerSecret = %q, %v", first, err)
	}
	again, err := db.ServerSecret(t.Context(), "codes", []byte("two"))
	if err != nil || !bytes.Equal(again, []byte("one")) {
		t.Fatalf("second ServerSecret = %q, %v; want the first", again, err)
	}
}

// testRenewals: one renewal per gateway, replaced as a whole by PutRenewal.
func testRenewals(t *testing.T, db *store.DB, _ *clock) {
	ctx := t.Context()
	mustCreate(t, db, newDevice("dev-01"))
	r := store.Renewal{DeviceID: "dev-01", Fingerprint: "fp", SealKey: []byte{1, 2}, Replaces: "11:22",
		StartedAt: at(0), ClaimedUntil: at(time.Minute)}
	inTx(t, db, func(tx *store.Tx) error { return tx.PutRenewal(ctx, r) })
	r.Serial, r.Certificate, r.CAChain, r.SealedKey = "33:44", "CERT", "CA", []byte{9}
	inTx(t, db, func(tx *store.Tx) error { return tx.PutRenewal(ctx, r) })
	inTx(t, db, func(tx *store.Tx) error {
		got, err := tx.Renewal(ctx, "dev-01")
		if err != nil {
			return err
		}
		diffStruct(t, "renewal", *got, r)
		if err := tx.DeleteRenewal(ctx, "dev-01"); err != nil {
			return err
		}
		_, err = tx.Renewal(ctx, "dev-01")
		wantCode(t, err, gatehouse.ENOTFOUND)
		return nil
	})
}

// testDecommissionOrder: the receipt lists backends in the order the
// decommission named them, not alphabetically nor by storage order.
func testDecommissionOrder(t *testing.T, db *store.DB, _ *clock) {
	ctx := t.Context()
	mustCreate(t, db, newDevice("dev-01"))
	order := []string{"vault", "mender", "dps", "iothub"}
	inTx(t, db, func(tx *store.Tx) error {
		return tx.CreateDecommission(ctx, "dev-01", "user:alice", gatehouse.StateProvisioned, order)
	})
	inTx(t, db, func(tx *store.Tx) error {
		if err := tx.FinishRemoval(ctx, "dev-01", "mender", []gatehouse.Removal{{Backend: "mender", Object: "d1", Result: "removed"}}); err != nil {
			return err
		}
		d, err := tx.Decommission(ctx, "dev-01")
		if err != nil {
			return err
		}
		var got []string
		for _, b := range d.Backends {
			got = append(got, b.Backend)
		}
		if !same(got, order) || d.By != "user:alice" || len(d.Backends[1].Removals) != 1 {
			t.Errorf("decommission = %+v, want backends %v", d, order)
		}
		return nil
	})
}

func isNotFound(err error) bool {
	var e *gatehouse.Error
	return errors.As(err, &e) && e.Code == gatehouse.ENOTFOUND
}
