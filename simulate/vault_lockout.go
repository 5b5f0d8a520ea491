package simulate

import (
	"net/http"
	"sort"
	"sync"
	"time"
)

// OpenBao's user lockout defaults (internalshared/configutil/userlockout.go:
// UserLockoutThresholdDefault, UserLockoutDurationDefault,
// UserLockoutCounterResetDefault), which apply to AppRole unless the
// server's user_lockout stanza or auth tune says otherwise.
const (
	VaultLockoutThreshold    = 5
	VaultLockoutDuration     = 15 * time.Minute
	VaultLockoutCounterReset = 15 * time.Minute
)

// vaultLockout counts failed AppRole logins per role id, as OpenBao's core
// does in vault/request_handling.go (isUserLocked, failedUserLoginProcess):
// once threshold failures have happened, each less than the counter reset
// after the previous one, every login for that role id is refused with a
// bare 403 until the lockout duration has passed since the last failure,
// even with the right secret id.
type vaultLockout struct {
	threshold       int
	duration, reset time.Duration
	disabled        bool
	accessor        string // the AppRole mount's accessor
	now             func() time.Time

	mu     sync.Mutex
	failed map[string]*failedLogins // alias (role id) → failures
}

type failedLogins struct {
	count int
	last  time.Time
}

func newVaultLockout(opts VaultServerOptions) *vaultLockout {
	return &vaultLockout{
		threshold: cmpOr(opts.LockoutThreshold, VaultLockoutThreshold),
		duration:  firstNonZero(opts.LockoutDuration, VaultLockoutDuration),
		reset:     firstNonZero(opts.LockoutCounterReset, VaultLockoutCounterReset),
		disabled:  opts.DisableLockout,
		accessor:  "auth_approle_" + randomVaultID(4),
		now:       opts.Now,
		failed:    map[string]*failedLogins{},
	}
}

// locked reports whether logins for alias are refused right now.
func (l *vaultLockout) locked(alias string) bool {
	if l.disabled {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lockedLocked(alias, l.now())
}

func (l *vaultLockout) lockedLocked(alias string, now time.Time) bool {
	f := l.failed[alias]
	return f != nil && f.count >= l.threshold && now.Sub(f.last) < l.duration
}

// fail counts a login refused for invalid credentials; the count starts
// again when the previous failure is older than the counter reset.
func (l *vaultLockout) fail(alias string) {
	if l.disabled {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.failed[alias]
	if f == nil || now.After(f.last.Add(l.reset)) {
		f = &failedLogins{}
		l.failed[alias] = f
	}
	f.count++
	f.last = now
}

// succeed forgets the failures of alias, as a successful login does.
func (l *vaultLockout) succeed(alias string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failed, alias)
}

// unlock is sys/locked-users/<accessor>/unlock/<alias>.
func (l *vaultLockout) unlock(accessor, alias string) {
	if accessor != l.accessor {
		return
	}
	l.succeed(alias)
}

// lockedAliases lists the role ids locked out right now.
func (l *vaultLockout) lockedAliases() []string {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for alias := range l.failed {
		if l.lockedLocked(alias, now) {
			out = append(out, alias)
		}
	}
	sort.Strings(out)
	return out
}

// lockedUsers answers GET sys/locked-users in the shape of OpenBao's
// vault/logical_system_user_lockout.go (by_namespace, mount_accessors,
// alias_identifiers).
func (a *vaultAPI) lockedUsers(w http.ResponseWriter, r *http.Request, _ []string) {
	aliases := a.lockout.lockedAliases()
	var byNS []map[string]any
	if len(aliases) > 0 {
		byNS = append(byNS, map[string]any{
			"namespace_id": "root", "namespace_path": "", "counts": len(aliases),
			"mount_accessors": []map[string]any{{
				"mount_accessor": a.lockout.accessor, "counts": len(aliases), "alias_identifiers": aliases,
			}},
		})
	}
	writeVaultData(w, map[string]any{"by_namespace": byNS, "total": len(aliases)})
}

// unlockUser answers POST sys/locked-users/<accessor>/unlock/<alias> with
// 204, whether or not the alias was locked.
func (a *vaultAPI) unlockUser(w http.ResponseWriter, r *http.Request, params []string) {
	a.lockout.unlock(params[0], params[1])
	w.WriteHeader(http.StatusNoContent)
}
