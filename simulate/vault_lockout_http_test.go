package simulate_test

import (
	"slices"
	"testing"
	"time"

	"gatehouse/simulate"
)

func approleLogin(t *testing.T, s *simulate.VaultServer, roleID, secretID string) vaultReply {
	t.Helper()
	return vaultCall(t, s, "POST", "/v1/auth/approle/login", "", map[string]any{"role_id": roleID, "secret_id": secretID})
}

// OpenBao's user lockout for AppRole (vault/request_handling.go
// handleLoginRequest, isUserLocked, failedUserLoginProcess; defaults
// threshold 5 and duration 15m from configutil's UserLockout*Default):
// five wrong secret ids lock the role id, and then even the right secret
// id gets a bare 403 until 15 minutes after the last failure.
func TestVaultAppRoleLockout(t *testing.T) {
	s, clk := newVaultServer(t, simulate.VaultServerOptions{AppRoleID: "role-1", AppRoleSecretID: "secret-1"})
	for range simulate.VaultLockoutThreshold {
		approleLogin(t, s, "role-1", "wrong").want(t, 400, "invalid role or secret ID")
	}
	r := approleLogin(t, s, "role-1", "secret-1")
	r.want(t, 403, "")
	if !slices.Equal(r.Errors, []string{"permission denied"}) {
		t.Errorf("locked login errors %q, want a bare permission denied", r.Errors)
	}
	approleLogin(t, s, "role-1", "wrong").want(t, 403, "permission denied")

	locked := vaultCall(t, s, "GET", "/v1/sys/locked-users", vaultRoot, nil)
	locked.want(t, 200, "")
	ns := locked.Data["by_namespace"].([]any)[0].(map[string]any)
	acc := ns["mount_accessors"].([]any)[0].(map[string]any)
	if acc["mount_accessor"] != s.AppRoleAccessor() || !slices.Equal(acc["alias_identifiers"].([]any), []any{"role-1"}) || locked.Data["total"] != 1.0 {
		t.Errorf("sys/locked-users %v", locked.Data)
	}

	clk.Add(simulate.VaultLockoutDuration - time.Second)
	approleLogin(t, s, "role-1", "secret-1").want(t, 403, "permission denied")
	clk.Add(time.Second)
	approleLogin(t, s, "role-1", "secret-1").want(t, 200, "")
	if got := s.LockedOut(); len(got) != 0 {
		t.Errorf("still locked: %v", got)
	}
}

// sys/locked-users/<mount accessor>/unlock/<role_id> lifts the lockout at
// once (vault/logical_system_user_lockout.go unlockUser).
func TestVaultAppRoleUnlock(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{AppRoleID: "role-1", AppRoleSecretID: "secret-1"})
	for range simulate.VaultLockoutThreshold {
		approleLogin(t, s, "role-1", "wrong")
	}
	approleLogin(t, s, "role-1", "secret-1").want(t, 403, "")
	r := vaultCall(t, s, "POST", "/v1/sys/locked-users/"+s.AppRoleAccessor()+"/unlock/role-1", vaultRoot, nil)
	if r.status != 204 {
		t.Fatalf("unlock: %d %q", r.status, r.Errors)
	}
	approleLogin(t, s, "role-1", "secret-1").want(t, 200, "")
}

// Only a wrong secret id for a real role id counts (approle's
// pathLoginUpdate returns ErrInvalidCredentials just there), a failure
// older than the counter reset starts the count again, and a success
// clears it.
func TestVaultAppRoleLockoutCounting(t *testing.T) {
	s, clk := newVaultServer(t, simulate.VaultServerOptions{AppRoleID: "role-1", AppRoleSecretID: "secret-1"})
	for range 10 {
		approleLogin(t, s, "nope", "secret-1").want(t, 400, "invalid role or secret ID")
		approleLogin(t, s, "role-1", "").want(t, 400, "missing secret_id")
	}
	approleLogin(t, s, "role-1", "secret-1").want(t, 200, "")

	for range simulate.VaultLockoutThreshold - 1 {
		approleLogin(t, s, "role-1", "wrong")
	}
	clk.Add(simulate.VaultLockoutCounterReset + time.Second)
	approleLogin(t, s, "role-1", "wrong")
	approleLogin(t, s, "role-1", "secret-1").want(t, 200, "")

	for range simulate.VaultLockoutThreshold - 1 {
		approleLogin(t, s, "role-1", "wrong")
	}
	approleLogin(t, s, "role-1", "secret-1").want(t, 200, "") // clears the four
	approleLogin(t, s, "role-1", "wrong")
	approleLogin(t, s, "role-1", "secret-1").want(t, 200, "")
}

func TestVaultAppRoleLockoutOptions(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{AppRoleID: "role-1", AppRoleSecretID: "secret-1", LockoutThreshold: 2})
	approleLogin(t, s, "role-1", "wrong")
	approleLogin(t, s, "role-1", "wrong")
	approleLogin(t, s, "role-1", "secret-1").want(t, 403, "")

	s, _ = newVaultServer(t, simulate.VaultServerOptions{AppRoleID: "role-1", AppRoleSecretID: "secret-1", DisableLockout: true})
	for range 10 {
		approleLogin(t, s, "role-1", "wrong")
	}
	approleLogin(t, s, "role-1", "secret-1").want(t, 200, "")
}

// Login tokens carry the gatehouse policy, which does not reach sys.
func TestVaultLockedUsersNeedsPolicy(t *testing.T) {
	s, _ := newVaultServer(t, simulate.VaultServerOptions{AppRoleID: "role-1", AppRoleSecretID: "secret-1"})
	tok := approleLogin(t, s, "role-1", "secret-1").Auth["client_token"].(string)
	vaultCall(t, s, "GET", "/v1/sys/locked-users", tok, nil).want(t, 403, "permission denied")
	r := vaultCall(t, s, "GET", "/v1/sys/locked-users", vaultRoot, nil)
	r.want(t, 200, "")
	if r.Data["total"] != 0.0 {
		t.Errorf("sys/locked-users %v", r.Data)
	}
}
