package provision_test

import (
	"strings"
	"sync"
	"testing"

	"gatehouse/internal/pgtest"
)

// TestPostgres runs provisioning flows on PostgreSQL: each is an ordinary
// test of this package, run here as a subtest, whose openDB then gives it
// PostgreSQL schemas instead of SQLite files. The list covers each kind of
// durable work (steps, follow-ups, removals, re-keys, bulk items, renewals,
// allowlist approvals) and a restart, and stops there: the package must
// stay well inside go test's 10-minute limit under -race on a loaded
// machine. Every flow can be run on PostgreSQL by adding it here.
func TestPostgres(t *testing.T) {
	pgtest.URL(t) // skips, with the reason, where no server is configured
	t.Parallel()
	for name, fn := range map[string]func(*testing.T){
		"Enroll":                   TestEnroll,
		"ApproveProvisionsOnce":    TestApproveProvisionsEveryBackendOnce,
		"Dismiss":                  TestDismiss,
		"RetryRunsFailedStepNow":   TestRetryRunsFailedStepNow,
		"FollowUpResumes":          TestFollowUpResumesAfterRestart,
		"BulkDismiss":              TestBulkDismiss,
		"Decommission":             TestDecommissionRemovesExactlyThatGateway,
		"ForgetThenEnrollAgain":    TestForgetThenEnrollAgain,
		"Rekey":                    TestRekeyKeepsNameAndIdentities,
		"Renew":                    TestRenewBeforeExpiryRevokesOldSerialAfterAck,
		"AllowlistFirstContact":    TestAllowlistApprovesOnFirstContact,
		"Nonces":                   TestUseNonceReplayAndPrune,
		"PendingCap":               TestPendingCapRefusesNewKeysOnly,
		"PendingReserve":           TestPendingReserveKeepsPlacesForNewAddresses,
		"CodesKeyedPerDatabase":    TestVerificationCodeKeyedPerDatabase,
		"TokenRevokedEndsSessions": TestTokenRevokedEndsItsSessions,
		"ExternalLogin":            TestExternalLogin,
		"RelabelReappliesManifest": TestRelabelReappliesManifest,
		"CrashBetweenSteps":        TestCrashBetweenStepsConverges,
		"LostResponses":            TestLostResponsesLeaveOneObjectPerBackend,
	} {
		t.Run(name, fn)
	}
}

func onPostgres(t *testing.T) bool { return strings.HasPrefix(t.Name(), "TestPostgres/") }

// schemas maps a test's database path to its PostgreSQL schema's URL.
var schemas sync.Map

func postgresFor(t *testing.T, path string) string {
	if u, ok := schemas.Load(path); ok {
		return u.(string)
	}
	u, _ := schemas.LoadOrStore(path, pgtest.URL(t))
	return u.(string)
}
