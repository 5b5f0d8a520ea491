package store_test

// This file is the store's conformance suite. It uses only the exported API
// of package store, so every backend (SQLite today, PostgreSQL later) runs it
// unchanged through runConformance with its own open function.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"gatehouse"
	"gatehouse/store"
)

// t0 is the suite's base clock. It has nanoseconds on purpose: stores keep
// microseconds, so every time read back must equal t0 truncated.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589_793_238, time.FixedZone("CET", 3600))

// at returns the stored form of t0+d: UTC, microsecond precision.
func at(d time.Duration) time.Time { return t0.Add(d).UTC().Truncate(time.Microsecond) }

// runConformance runs the behaviour every store backend must share. open
// returns a fresh, empty, migrated database for one test and arranges for it
// to be closed when the test ends (the suite may close it first; closing twice
// must be harmless). Subtests run in parallel, one database each.
func runConformance(t *testing.T, open func(t *testing.T) *store.DB) {
	t.Helper()
	// c opens a database whose clock stands at t0 until the test moves it.
	c := func(t *testing.T) (*store.DB, *clock) {
		t.Helper()
		db := open(t)
		clk := &clock{now: t0}
		db.Now = clk.Now
		return db, clk
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB, clk *clock)
	}{
		{"CreateDevice/OK", testCreateDeviceOK},
		{"CreateDevice/SetsTimesOnDevice", testCreateDeviceSetsTimes},
		{"CreateDevice/DuplicateFingerprint", testCreateDeviceDuplicateFingerprint},
		{"CreateDevice/DuplicateID", testCreateDeviceDuplicateID},
		{"FindKey/OK", testFindKeyOK},
		{"FindKey/NotFound", testFindKeyNotFound},
		{"Device/NotFound", testDeviceNotFound},
		{"Device/WithSteps", testDeviceWithSteps},
		{"TouchDevice/OK", testTouchDevice},
		{"Devices/Empty", testDevicesEmpty},
		{"Devices/ZeroFilterListsAll", testDevicesZeroFilter},
		{"Devices/NewestFirst", testDevicesNewestFirst},
		{"Devices/TiesOrderedByID", testDevicesTies},
		{"Devices/StateFilter", testDevicesStateFilter},
		{"Devices/Search", testDevicesSearch},
		{"Devices/SearchAndState", testDevicesSearchAndState},
		{"Certificates/KeptRevokedExpiring", testCertificates},
		{"Certificates/OfKey", testAddCertificateOfKey},
		{"Savepoint/PartsFailAlone", testSavepointParts},
		{"Savepoint/RollsBackWithTx", testSavepointRollsBackWithTx},
		{"StepStates/OK", testStepStates},
		{"Allowlist/ClaimOnce", testAllowlist},
		{"Devices/LimitOffset", testDevicesLimitOffset},
		{"Devices/FieldsMatchDevice", testDevicesFields},
		{"UpdateDevice/Fields", testUpdateDeviceFields},
		{"UpdateDevice/NoFieldsTouchesUpdatedAt", testUpdateDeviceNoFields},
		{"UpdateDevice/NameTaken", testUpdateDeviceNameTaken},
		{"UpdateDevice/SameNameAgain", testUpdateDeviceSameName},
		{"UpdateDevice/NotFound", testUpdateDeviceNotFound},
		{"DeviceByName/OK", testDeviceByNameOK},
		{"DeviceByName/NotFound", testDeviceByNameNotFound},
		{"Acked/OK", testAcked},
		{"Acked/NotFound", testAckedNotFound},
		{"UpdateKeyRequest/OK", testUpdateKeyRequest},
		{"CreateSteps/OK", testCreateSteps},
		{"CreateSteps/Duplicate", testCreateStepsDuplicate},
		{"Steps/None", testStepsNone},
		{"StartStep/CountsAttempts", testStartStep},
		{"StartStep/NotFound", testStepNotFound},
		{"FailStep/Reason", testFailStep},
		{"FinishStep/RoundTrip", testFinishStep},
		{"SetStepJob/OK", testSetStepJob},
		{"StepsOf/Page", testStepsOf},
		{"UpdateDevice/Labels", testUpdateDeviceLabels},
		{"FinishStep/AfterFailure", testFinishStepAfterFailure},
		{"ClearSealed/OK", testClearSealed},
		{"Events/OrderAndTimes", testEvents},
		{"Events/None", testEventsNone},
		{"CreateToken/OK", testCreateToken},
		{"CreateToken/DuplicateHash", testCreateTokenDuplicateHash},
		{"TokenByHash/NotFound", testTokenByHashNotFound},
		{"TouchToken/OK", testTouchToken},
		{"InTx/Commit", testInTxCommit},
		{"InTx/RollbackOnError", testInTxRollback},
		{"InTx/Concurrent", testInTxConcurrent},
		{"InTx/Clock", testInTxClock},
		{"Jobs/EnqueueInTx", testJobsInTx},
		{"View/ReadsCommitted", testView},
		{"Users/CRUD", testUsers},
		{"Sessions/Lifecycle", testSessions},
		{"Tokens/LiveNameUnique", testTokenLiveName},
		{"ServerSecret/FirstWins", testServerSecret},
		{"Renewals/PutReplaces", testRenewals},
		{"Decommission/ReceiptOrder", testDecommissionOrder},
		{"Audit/AppendChains", testAuditAppendChains},
		{"Audit/RolledBack", testAuditRolledBack},
		{"Audit/RefusesInvalidUTF8", testAuditRefusesInvalidUTF8},
		{"Audit/EntriesPages", testAuditEntriesPages},
		{"SeedPending/AllOrNothing", testSeedPendingAllOrNothing},
		{"SeedPending/Many", testSeedPendingMany},
		{"DB/PingAndSchemaVersion", testDBPing},
		{"DB/Close", testDBClose},
		{"UseNonce/OK", testUseNonce},
		{"UseNonce/Concurrent", testUseNonceConcurrent},
		{"UseNonce/ManyRacing", testUseNonceManyRacing},
		{"UseNonce/ClosedDatabase", testUseNonceClosed},
		{"DeleteExpiredNonces/OK", testDeleteExpiredNonces},
		{"CountPending/OK", testCountPending},
		{"PendingFrom/OK", testPendingFrom},
		{"PendingSeenBefore/OK", testPendingSeenBefore},
		{"DeleteDevices/OK", testDeleteDevices},
		{"Devices/Sort", testDevicesSort},
		{"Devices/SearchCode", testDevicesSearchCode},
		{"Devices/SearchCodeMany", testDevicesSearchCodeMany},
		{"DevicesAfter/Walk", testDevicesAfter},
		{"DevicesAfter/Changes", testDevicesAfterChanges},
		{"DeviceCounts/OK", testDeviceCounts},
		{"AgentClaims/OK", testAgentClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db, clk := c(t)
			tt.fn(t, db, clk)
		})
	}
}

// clock is a settable clock for DB.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// --- helpers ---

// inTx runs fn in a transaction and fails the test if it returns an error.
func inTx(t *testing.T, db *store.DB, fn func(tx *store.Tx) error) {
	t.Helper()
	if err := db.InTx(t.Context(), fn); err != nil {
		t.Fatalf("InTx: %v", err)
	}
}

// txErr runs fn in a transaction and returns its error, for error cases.
func txErr(t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) error) error {
	t.Helper()
	ctx := t.Context()
	return db.InTx(ctx, func(tx *store.Tx) error { return fn(ctx, tx) })
}

func newDevice(id string) *gatehouse.Device {
	return &gatehouse.Device{
		ID:          id,
		State:       gatehouse.StatePending,
		MAC:         "02:00:00:00:00:" + id[len(id)-2:],
		Fingerprint: "fp-" + id,
		SourceAddr:  "192.0.2.1:4000",
	}
}

func newKey(d *gatehouse.Device) gatehouse.DeviceKey {
	return gatehouse.DeviceKey{
		Fingerprint: d.Fingerprint,
		KeyType:     "ed25519",
		PublicKey:   []byte("pub-" + d.ID + "\x00\xff"),
		SealKey:     []byte("seal-" + d.ID + "\x00\xff"),
		CSR:         "csr-" + d.ID,
	}
}

// mustCreate inserts devices, each with its key, in one transaction.
func mustCreate(t *testing.T, db *store.DB, ds ...*gatehouse.Device) {
	t.Helper()
	inTx(t, db, func(tx *store.Tx) error {
		for _, d := range ds {
			if err := tx.CreateDevice(t.Context(), d, newKey(d)); err != nil {
				return fmt.Errorf("CreateDevice(%s): %w", d.ID, err)
			}
		}
		return nil
	})
}

func mustDevice(t *testing.T, db *store.DB, id string) *gatehouse.Device {
	t.Helper()
	var d *gatehouse.Device
	inTx(t, db, func(tx *store.Tx) (err error) {
		d, err = tx.Device(t.Context(), id)
		return err
	})
	return d
}

func mustSteps(t *testing.T, db *store.DB, id string) []gatehouse.Step {
	t.Helper()
	var s []gatehouse.Step
	inTx(t, db, func(tx *store.Tx) (err error) {
		s, err = tx.Steps(t.Context(), id)
		return err
	})
	return s
}

func mustDevices(t *testing.T, db *store.DB, f store.DeviceFilter) (ids []string, total int) {
	t.Helper()
	inTx(t, db, func(tx *store.Tx) error {
		ds, n, err := tx.Devices(t.Context(), f)
		if err != nil {
			return err
		}
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		total = n
		return nil
	})
	return ids, total
}

func mustUpdate(t *testing.T, db *store.DB, id string, u store.DeviceUpdate) {
	t.Helper()
	inTx(t, db, func(tx *store.Tx) error { return tx.UpdateDevice(t.Context(), id, u) })
}

// wantCode checks err carries a *gatehouse.Error with code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want code %q", code)
	}
	var ge *gatehouse.Error
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v (%T), want a *gatehouse.Error", err, err)
	}
	if got := gatehouse.ErrorCode(err); got != code {
		t.Fatalf("ErrorCode(%v) = %q, want %q", err, got, code)
	}
}

func wantUnique(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrUnique) {
		t.Fatalf("err = %v, want one wrapping store.ErrUnique", err)
	}
}

// same reports whether got and want are equal, treating times by Equal and
// nil and empty maps and slices as equal.
func same(got, want any) bool {
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	switch gv := got.(type) {
	case time.Time:
		return gv.Equal(want.(time.Time))
	case *time.Time:
		wv := want.(*time.Time)
		return (gv == nil) == (wv == nil) && (gv == nil || gv.Equal(*wv))
	}
	switch g.Kind() {
	case reflect.Map, reflect.Slice:
		if g.Len() == 0 && w.Len() == 0 {
			return true
		}
	}
	return reflect.DeepEqual(got, want)
}

// show formats a value for a failure message, dereferencing time pointers.
func show(v any) string {
	if p, ok := v.(*time.Time); ok {
		if p == nil {
			return "nil"
		}
		return p.String()
	}
	return fmt.Sprintf("%v", v)
}

// diffStruct reports each exported field of two structs of the same type that
// differs, naming it. Fields named in skip are ignored.
func diffStruct(t *testing.T, what string, got, want any, skip ...string) {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	if g.Kind() == reflect.Pointer {
		g, w = g.Elem(), w.Elem()
	}
	for i := range g.NumField() {
		f := g.Type().Field(i)
		if !f.IsExported() || contains(skip, f.Name) {
			continue
		}
		gv, wv := g.Field(i).Interface(), w.Field(i).Interface()
		if f.Name == "Steps" {
			diffSteps(t, what+".Steps", gv.([]gatehouse.Step), wv.([]gatehouse.Step))
			continue
		}
		if !same(gv, wv) {
			t.Errorf("%s.%s = %s, want %s", what, f.Name, show(gv), show(wv))
		}
	}
}

func diffSteps(t *testing.T, what string, got, want []gatehouse.Step) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d steps %v, want %d %v", what, len(got), stepNames(got), len(want), stepNames(want))
		return
	}
	for i := range got {
		diffStruct(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

func stepNames(s []gatehouse.Step) []gatehouse.StepName {
	var out []gatehouse.StepName
	for _, st := range s {
		out = append(out, st.Name)
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

func wantIDs(t *testing.T, what string, got []string, gotTotal int, want []string, wantTotal int) {
	t.Helper()
	if !same(got, want) || gotTotal != wantTotal {
		t.Errorf("%s = %q (total %d), want %q (total %d)", what, got, gotTotal, want, wantTotal)
	}
}

func ptr[T any](v T) *T { return &v }

// --- devices and keys ---

func testCreateDeviceOK(t *testing.T, db *store.DB, _ *clock) {
	d := newDevice("dev-01")
	mustCreate(t, db, d)

	got := mustDevice(t, db, "dev-01")
	want := &gatehouse.Device{
		ID:          "dev-01",
		State:       gatehouse.StatePending,
		MAC:         "02:00:00:00:00:01",
		Fingerprint: "fp-dev-01",
		KeyType:     "ed25519",
		SourceAddr:  "192.0.2.1:4000",
		FirstSeen:   at(0),
		LastSeen:    at(0),
		UpdatedAt:   at(0),
	}
	// The verification code is derived from the key by the caller, not stored.
	diffStruct(t, "Device", got, want, "VerificationCode")
	for name, tm := range map[string]time.Time{"FirstSeen": got.FirstSeen, "LastSeen": got.LastSeen, "UpdatedAt": got.UpdatedAt} {
		if tm.Location() != time.UTC {
			t.Errorf("%s location = %v, want UTC", name, tm.Location())
		}
	}
}

func testCreateDeviceSetsTimes(t *testing.T, db *store.DB, _ *clock) {
	d := newDevice("dev-01")
	mustCreate(t, db, d)
	// The times CreateDevice sets on d are the ones a later read returns.
	got := mustDevice(t, db, "dev-01")
	for _, c := range []struct {
		name      string
		set, read time.Time
	}{
		{"FirstSeen", d.FirstSeen, got.FirstSeen},
		{"LastSeen", d.LastSeen, got.LastSeen},
		{"UpdatedAt", d.UpdatedAt, got.UpdatedAt},
	} {
		if !c.set.Equal(c.read) || !c.set.Equal(at(0)) {
			t.Errorf("%s: set on device %v, read back %v, want both %v", c.name, c.set, c.read, at(0))
		}
	}
}

func testCreateDeviceDuplicateFingerprint(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	other := newDevice("dev-02")
	other.Fingerprint = "fp-dev-01"
	err := txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.CreateDevice(ctx, other, newKey(other))
	})
	wantUnique(t, err)

	ids, total := mustDevices(t, db, store.DeviceFilter{})
	wantIDs(t, "Devices after failed create", ids, total, []string{"dev-01"}, 1)
}

func testCreateDeviceDuplicateID(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	other := newDevice("dev-01")
	other.Fingerprint = "fp-other"
	err := txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.CreateDevice(ctx, other, newKey(other))
	})
	wantUnique(t, err)
}

func testFindKeyOK(t *testing.T, db *store.DB, _ *clock) {
	d := newDevice("dev-01")
	mustCreate(t, db, d)
	var got *gatehouse.DeviceKey
	inTx(t, db, func(tx *store.Tx) (err error) {
		got, err = tx.FindKey(t.Context(), "fp-dev-01")
		return err
	})
	want := newKey(d)
	want.DeviceID = "dev-01"
	diffStruct(t, "DeviceKey", got, &want)
}

func testFindKeyNotFound(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	err := txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		k, err := tx.FindKey(ctx, "fp-nope")
		if k != nil {
			t.Errorf("FindKey = %+v, want nil", k)
		}
		return err
	})
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testDeviceNotFound(t *testing.T, db *store.DB, _ *clock) {
	err := txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		d, err := tx.Device(ctx, "dev-nope")
		if d != nil {
			t.Errorf("Device = %+v, want nil", d)
		}
		return err
	})
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testDeviceWithSteps(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"))
	inTx(t, db, func(tx *store.Tx) error {
		if err := tx.CreateSteps(t.Context(), "dev-01", []gatehouse.StepName{gatehouse.StepVault, gatehouse.StepMender}); err != nil {
			return err
		}
		return tx.CreateSteps(t.Context(), "dev-02", []gatehouse.StepName{gatehouse.StepDPS})
	})
	got := mustDevice(t, db, "dev-01")
	want := []gatehouse.Step{
		{Name: gatehouse.StepMender, State: gatehouse.StepPending},
		{Name: gatehouse.StepVault, State: gatehouse.StepPending},
	}
	diffSteps(t, "Device.Steps", got.Steps, want)
}

func testTouchDevice(t *testing.T, db *store.DB, clk *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	clk.Set(t0.Add(time.Hour))
	inTx(t, db, func(tx *store.Tx) error { return tx.TouchDevice(t.Context(), "dev-01", "198.51.100.7:5000", 0) })

	got := mustDevice(t, db, "dev-01")
	if !got.LastSeen.Equal(at(time.Hour)) {
		t.Errorf("LastSeen = %v, want %v", got.LastSeen, at(time.Hour))
	}
	if got.SourceAddr != "198.51.100.7:5000" {
		t.Errorf("SourceAddr = %q, want %q", got.SourceAddr, "198.51.100.7:5000")
	}
	if !got.FirstSeen.Equal(at(0)) {
		t.Errorf("FirstSeen = %v, want unchanged %v", got.FirstSeen, at(0))
	}

	// Within the interval from the same address nothing is written.
	clk.Set(t0.Add(time.Hour + 30*time.Second))
	inTx(t, db, func(tx *store.Tx) error {
		return tx.TouchDevice(t.Context(), "dev-01", "198.51.100.7:5000", time.Minute)
	})
	if got := mustDevice(t, db, "dev-01"); !got.LastSeen.Equal(at(time.Hour)) {
		t.Errorf("LastSeen = %v, want unchanged %v within the interval", got.LastSeen, at(time.Hour))
	}
	clk.Set(t0.Add(2 * time.Hour))
	inTx(t, db, func(tx *store.Tx) error {
		return tx.TouchDevice(t.Context(), "dev-01", "198.51.100.7:5000", time.Minute)
	})
	if got := mustDevice(t, db, "dev-01"); !got.LastSeen.Equal(at(2 * time.Hour)) {
		t.Errorf("LastSeen = %v, want %v after the interval", got.LastSeen, at(2*time.Hour))
	}
}

// --- listing ---

func testDevicesEmpty(t *testing.T, db *store.DB, _ *clock) {
	ids, total := mustDevices(t, db, store.DeviceFilter{Limit: 10})
	wantIDs(t, "Devices", ids, total, nil, 0)
}

// createAt creates each device one minute after the previous, so the last is
// the newest.
func createAt(t *testing.T, db *store.DB, clk *clock, ds ...*gatehouse.Device) {
	t.Helper()
	for i, d := range ds {
		clk.Set(t0.Add(time.Duration(i) * time.Minute))
		mustCreate(t, db, d)
	}
}

func testDevicesZeroFilter(t *testing.T, db *store.DB, clk *clock) {
	createAt(t, db, clk, newDevice("dev-01"), newDevice("dev-02"))
	// A zero filter does not filter: no limit either.
	ids, total := mustDevices(t, db, store.DeviceFilter{})
	wantIDs(t, "Devices(zero filter)", ids, total, []string{"dev-02", "dev-01"}, 2)
}

func testDevicesNewestFirst(t *testing.T, db *store.DB, clk *clock) {
	// Created out of id order so the order cannot come from the ids.
	createAt(t, db, clk, newDevice("dev-02"), newDevice("dev-03"), newDevice("dev-01"))
	ids, total := mustDevices(t, db, store.DeviceFilter{Limit: 10})
	wantIDs(t, "Devices", ids, total, []string{"dev-01", "dev-03", "dev-02"}, 3)
}

func testDevicesTies(t *testing.T, db *store.DB, _ *clock) {
	// Same first_seen: the id breaks the tie, so pages are stable.
	mustCreate(t, db, newDevice("dev-03"), newDevice("dev-01"), newDevice("dev-02"))
	ids, total := mustDevices(t, db, store.DeviceFilter{Limit: 10})
	wantIDs(t, "Devices", ids, total, []string{"dev-01", "dev-02", "dev-03"}, 3)
}

func testDevicesStateFilter(t *testing.T, db *store.DB, clk *clock) {
	createAt(t, db, clk, newDevice("dev-01"), newDevice("dev-02"), newDevice("dev-03"))
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{State: ptr(gatehouse.StateApproved)})
	mustUpdate(t, db, "dev-03", store.DeviceUpdate{State: ptr(gatehouse.StateApproved)})

	for _, tt := range []struct {
		state gatehouse.State
		want  []string
	}{
		{gatehouse.StateApproved, []string{"dev-03", "dev-01"}},
		{gatehouse.StatePending, []string{"dev-02"}},
		{gatehouse.StateFailed, nil},
	} {
		ids, total := mustDevices(t, db, store.DeviceFilter{State: tt.state, Limit: 10})
		wantIDs(t, fmt.Sprintf("Devices(state %s)", tt.state), ids, total, tt.want, len(tt.want))
	}
}

func testDevicesSearch(t *testing.T, db *store.DB, clk *clock) {
	a := newDevice("dev-01")
	a.MAC, a.Fingerprint = "aa:bb:cc:00:00:01", "sha256:1234abcd"
	b := newDevice("dev-02")
	b.MAC, b.Fingerprint = "aa:bb:cc:00:00:02", "sha256:5678ef00"
	c := newDevice("dev-03")
	c.MAC, c.Fingerprint = "de:ad:be:ef:00:03", "sha256:100%_x"
	d := newDevice("dev-04")
	d.MAC, d.Fingerprint = "de:ad:be:ef:00:04", "sha256:100ab_x"
	createAt(t, db, clk, a, b, c, d)
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{Name: ptr("hall-east")})
	mustUpdate(t, db, "dev-02", store.DeviceUpdate{Name: ptr("hall-west")})
	mustUpdate(t, db, "dev-03", store.DeviceUpdate{Name: ptr("x_y")})
	mustUpdate(t, db, "dev-04", store.DeviceUpdate{Name: ptr("xzy")})

	for _, tt := range []struct {
		search string
		want   []string
	}{
		{"hall", []string{"dev-02", "dev-01"}},                 // name substring
		{"-east", []string{"dev-01"}},                          // name, middle to end
		{"cc:00:00:02", []string{"dev-02"}},                    // MAC substring
		{"AA:BB", []string{"dev-02", "dev-01"}},                // case does not matter
		{"34ab", []string{"dev-01"}},                           // fingerprint substring
		{"100%", []string{"dev-03"}},                           // '%' is literal
		{"100%_x", []string{"dev-03"}},                         // both literal
		{"x_y", []string{"dev-03"}},                            // '_' is literal: not "xzy"
		{"_", []string{"dev-04", "dev-03"}},                    // '_' only where it is
		{`\`, nil},                                             // backslash is literal too
		{"nothing-like-this", nil},                             // no match
		{"", []string{"dev-04", "dev-03", "dev-02", "dev-01"}}, // empty: no filter
	} {
		ids, total := mustDevices(t, db, store.DeviceFilter{Search: tt.search, Limit: 10})
		wantIDs(t, fmt.Sprintf("Devices(search %q)", tt.search), ids, total, tt.want, len(tt.want))
	}
}

func testDevicesSearchAndState(t *testing.T, db *store.DB, clk *clock) {
	createAt(t, db, clk, newDevice("dev-01"), newDevice("dev-02"), newDevice("dev-03"))
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{Name: ptr("hall-1"), State: ptr(gatehouse.StateApproved)})
	mustUpdate(t, db, "dev-02", store.DeviceUpdate{Name: ptr("hall-2")})
	mustUpdate(t, db, "dev-03", store.DeviceUpdate{Name: ptr("yard-3"), State: ptr(gatehouse.StateApproved)})

	ids, total := mustDevices(t, db, store.DeviceFilter{State: gatehouse.StateApproved, Search: "hall", Limit: 10})
	wantIDs(t, "Devices(approved, hall)", ids, total, []string{"dev-01"}, 1)
}

func testDevicesLimitOffset(t *testing.T, db *store.DB, clk *clock) {
	var ds []*gatehouse.Device
	for i := 1; i <= 5; i++ {
		ds = append(ds, newDevice(fmt.Sprintf("dev-%02d", i)))
	}
	createAt(t, db, clk, ds...)
	mustUpdate(t, db, "dev-03", store.DeviceUpdate{State: ptr(gatehouse.StateDismissed)})

	for _, tt := range []struct {
		f         store.DeviceFilter
		want      []string
		wantTotal int
	}{
		{store.DeviceFilter{Limit: 2}, []string{"dev-05", "dev-04"}, 5},
		{store.DeviceFilter{Limit: 2, Offset: 2}, []string{"dev-03", "dev-02"}, 5},
		{store.DeviceFilter{Limit: 2, Offset: 4}, []string{"dev-01"}, 5},
		{store.DeviceFilter{Limit: 2, Offset: 5}, nil, 5},
		{store.DeviceFilter{Limit: 2, Offset: 100}, nil, 5},
		{store.DeviceFilter{Offset: 3}, []string{"dev-02", "dev-01"}, 5}, // offset without limit
		{store.DeviceFilter{State: gatehouse.StatePending, Limit: 2, Offset: 1}, []string{"dev-04", "dev-02"}, 4},
	} {
		ids, total := mustDevices(t, db, tt.f)
		wantIDs(t, fmt.Sprintf("Devices(%+v)", tt.f), ids, total, tt.want, tt.wantTotal)
	}
}

func testDevicesFields(t *testing.T, db *store.DB, clk *clock) {
	createAt(t, db, clk, newDevice("dev-01"), newDevice("dev-02"))
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{Name: ptr("one"), ApprovedBy: ptr("alice"), ApprovedAt: ptr(t0)})
	var list []*gatehouse.Device
	inTx(t, db, func(tx *store.Tx) (err error) {
		list, _, err = tx.Devices(t.Context(), store.DeviceFilter{Limit: 10})
		return err
	})
	if len(list) != 2 {
		t.Fatalf("Devices returned %d devices, want 2", len(list))
	}
	// A listed device is the device, without its steps.
	for _, got := range list {
		want := mustDevice(t, db, got.ID)
		want.Steps = nil
		diffStruct(t, "Devices["+got.ID+"]", got, want)
	}
}

// --- updates ---

func testUpdateDeviceFields(t *testing.T, db *store.DB, clk *clock) {
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"))
	base := mustDevice(t, db, "dev-01")
	approvedAt := t0.Add(-time.Hour) // any time, not only the clock's

	for i, tt := range []struct {
		name   string
		update store.DeviceUpdate
		change func(d *gatehouse.Device)
	}{
		{"State", store.DeviceUpdate{State: ptr(gatehouse.StateApproved)},
			func(d *gatehouse.Device) { d.State = gatehouse.StateApproved }},
		{"Name", store.DeviceUpdate{Name: ptr("gw-one")},
			func(d *gatehouse.Device) { d.Name = "gw-one" }},
		{"ApprovedBy", store.DeviceUpdate{ApprovedBy: ptr("alice")},
			func(d *gatehouse.Device) { d.ApprovedBy = "alice" }},
		{"ApprovedAt", store.DeviceUpdate{ApprovedAt: &approvedAt},
			func(d *gatehouse.Device) { d.ApprovedAt = ptr(approvedAt.UTC().Truncate(time.Microsecond)) }},
		{"Reason", store.DeviceUpdate{Reason: ptr("bad key")},
			func(d *gatehouse.Device) { d.Reason = "bad key" }},
		{"Several", store.DeviceUpdate{State: ptr(gatehouse.StateDismissed), Reason: ptr("")},
			func(d *gatehouse.Device) { d.State, d.Reason = gatehouse.StateDismissed, "" }},
	} {
		now := time.Duration(i+1) * time.Minute
		clk.Set(t0.Add(now))
		mustUpdate(t, db, "dev-01", tt.update)
		tt.change(base)
		base.UpdatedAt = at(now)
		diffStruct(t, "after "+tt.name, mustDevice(t, db, "dev-01"), base)
	}

	// The other device is untouched.
	other := mustDevice(t, db, "dev-02")
	if other.State != gatehouse.StatePending || other.Name != "" || !other.UpdatedAt.Equal(at(0)) {
		t.Errorf("other device changed: state %q, name %q, updated %v", other.State, other.Name, other.UpdatedAt)
	}
}

func testUpdateDeviceNoFields(t *testing.T, db *store.DB, clk *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	before := mustDevice(t, db, "dev-01")
	clk.Set(t0.Add(time.Minute))
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{})
	before.UpdatedAt = at(time.Minute)
	diffStruct(t, "Device", mustDevice(t, db, "dev-01"), before)
}

func testUpdateDeviceNameTaken(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"))
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{Name: ptr("gw")})
	err := txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.UpdateDevice(ctx, "dev-02", store.DeviceUpdate{Name: ptr("gw"), State: ptr(gatehouse.StateApproved)})
	})
	wantUnique(t, err)
	if got := mustDevice(t, db, "dev-02"); got.Name != "" || got.State != gatehouse.StatePending {
		t.Errorf("dev-02 after failed update: name %q state %q, want unnamed and pending", got.Name, got.State)
	}
}

func testUpdateDeviceSameName(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{Name: ptr("gw")})
	// Setting a device's own name again is no conflict.
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{Name: ptr("gw")})
}

func testUpdateDeviceNotFound(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	err := txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.UpdateDevice(ctx, "dev-nope", store.DeviceUpdate{State: ptr(gatehouse.StateApproved)})
	})
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testDeviceByNameOK(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"))
	mustUpdate(t, db, "dev-02", store.DeviceUpdate{Name: ptr("gw-two")})
	var got *gatehouse.Device
	inTx(t, db, func(tx *store.Tx) (err error) {
		got, err = tx.DeviceByName(t.Context(), "gw-two")
		return err
	})
	want := mustDevice(t, db, "dev-02")
	want.Steps = nil
	diffStruct(t, "DeviceByName", got, want)
}

func testDeviceByNameNotFound(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{Name: ptr("gw-one")})
	for _, name := range []string{"gw-two", "gw", "GW-ONE"} {
		err := txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
			_, err := tx.DeviceByName(ctx, name)
			return err
		})
		wantCode(t, err, gatehouse.ENOTFOUND)
	}
}

func testAcked(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"))
	acked := func(id string) bool {
		t.Helper()
		var ok bool
		inTx(t, db, func(tx *store.Tx) (err error) {
			ok, err = tx.Acked(t.Context(), id)
			return err
		})
		return ok
	}
	if acked("dev-01") {
		t.Fatal("Acked(new device) = true, want false")
	}
	mustUpdate(t, db, "dev-01", store.DeviceUpdate{AckedAt: ptr(t0)})
	if !acked("dev-01") {
		t.Error("Acked after AckedAt = false, want true")
	}
	if acked("dev-02") {
		t.Error("Acked(other device) = true, want false")
	}
}

func testAckedNotFound(t *testing.T, db *store.DB, _ *clock) {
	err := txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.Acked(ctx, "dev-nope")
		return err
	})
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testUpdateKeyRequest(t *testing.T, db *store.DB, _ *clock) {
	d1, d2 := newDevice("dev-01"), newDevice("dev-02")
	mustCreate(t, db, d1, d2)
	newSeal, newCSR := []byte{0x00, 0x01, 0xfe, 0xff}, "-----BEGIN CERTIFICATE REQUEST-----\nnew\n"
	inTx(t, db, func(tx *store.Tx) error { return tx.UpdateKeyRequest(t.Context(), "fp-dev-01", newSeal, newCSR) })

	for _, tt := range []struct {
		d    *gatehouse.Device
		seal []byte
		csr  string
	}{{d1, newSeal, newCSR}, {d2, newKey(d2).SealKey, newKey(d2).CSR}} {
		var got *gatehouse.DeviceKey
		inTx(t, db, func(tx *store.Tx) (err error) {
			got, err = tx.FindKey(t.Context(), tt.d.Fingerprint)
			return err
		})
		want := newKey(tt.d)
		want.DeviceID, want.SealKey, want.CSR = tt.d.ID, tt.seal, tt.csr
		diffStruct(t, "DeviceKey "+tt.d.ID, got, &want)
	}
}

// --- provisioning steps ---

func testCreateSteps(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	inTx(t, db, func(tx *store.Tx) error {
		return tx.CreateSteps(t.Context(), "dev-01", []gatehouse.StepName{gatehouse.StepVault, gatehouse.StepMender, gatehouse.StepDPS})
	})
	want := []gatehouse.Step{
		{Name: gatehouse.StepDPS, State: gatehouse.StepPending},
		{Name: gatehouse.StepMender, State: gatehouse.StepPending},
		{Name: gatehouse.StepVault, State: gatehouse.StepPending},
	}
	diffSteps(t, "Steps", mustSteps(t, db, "dev-01"), want)
}

func testCreateStepsDuplicate(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	inTx(t, db, func(tx *store.Tx) error {
		return tx.CreateSteps(t.Context(), "dev-01", []gatehouse.StepName{gatehouse.StepMender})
	})
	err := txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.CreateSteps(ctx, "dev-01", []gatehouse.StepName{gatehouse.StepMender})
	})
	wantUnique(t, err)
}

func testStepsNone(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	if got := mustSteps(t, db, "dev-01"); len(got) != 0 {
		t.Errorf("Steps = %v, want none", stepNames(got))
	}
	if got := mustSteps(t, db, "dev-nope"); len(got) != 0 {
		t.Errorf("Steps(unknown device) = %v, want none", stepNames(got))
	}
}

// withSteps creates dev-01 with the mender and vault steps.
func withSteps(t *testing.T, db *store.DB) {
	t.Helper()
	mustCreate(t, db, newDevice("dev-01"))
	inTx(t, db, func(tx *store.Tx) error {
		return tx.CreateSteps(t.Context(), "dev-01", []gatehouse.StepName{gatehouse.StepMender, gatehouse.StepVault})
	})
}

func stepTx(t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) error) {
	t.Helper()
	if err := txErr(t, db, fn); err != nil {
		t.Fatal(err)
	}
}

func testStartStep(t *testing.T, db *store.DB, clk *clock) {
	withSteps(t, db)
	for i := 1; i <= 3; i++ {
		clk.Set(t0.Add(time.Duration(i) * time.Minute))
		stepTx(t, db, func(ctx context.Context, tx *store.Tx) error {
			return tx.StartStep(ctx, "dev-01", gatehouse.StepMender)
		})
		want := []gatehouse.Step{
			{Name: gatehouse.StepMender, State: gatehouse.StepRunning, Attempts: i, StartedAt: ptr(at(time.Duration(i) * time.Minute))},
			{Name: gatehouse.StepVault, State: gatehouse.StepPending},
		}
		diffSteps(t, fmt.Sprintf("Steps after %d starts", i), mustSteps(t, db, "dev-01"), want)
	}
}

func testStepNotFound(t *testing.T, db *store.DB, _ *clock) {
	withSteps(t, db)
	for _, tt := range []struct {
		name string
		fn   func(ctx context.Context, tx *store.Tx) error
	}{
		{"StartStep(unknown step)", func(ctx context.Context, tx *store.Tx) error {
			return tx.StartStep(ctx, "dev-01", gatehouse.StepDPS)
		}},
		{"StartStep(unknown device)", func(ctx context.Context, tx *store.Tx) error {
			return tx.StartStep(ctx, "dev-nope", gatehouse.StepMender)
		}},
		{"FailStep", func(ctx context.Context, tx *store.Tx) error {
			return tx.FailStep(ctx, "dev-01", gatehouse.StepDPS, "boom")
		}},
		{"FinishStep", func(ctx context.Context, tx *store.Tx) error {
			return tx.FinishStep(ctx, "dev-01", gatehouse.StepDPS, nil, nil)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, txErr(t, db, tt.fn), gatehouse.ENOTFOUND)
		})
	}
}

func testFailStep(t *testing.T, db *store.DB, clk *clock) {
	withSteps(t, db)
	stepTx(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.StartStep(ctx, "dev-01", gatehouse.StepVault) })
	clk.Set(t0.Add(time.Minute))
	stepTx(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.FailStep(ctx, "dev-01", gatehouse.StepVault, "vault: 503 Service Unavailable")
	})
	want := []gatehouse.Step{
		{Name: gatehouse.StepMender, State: gatehouse.StepPending},
		{Name: gatehouse.StepVault, State: gatehouse.StepFailed, Attempts: 1, LastError: "vault: 503 Service Unavailable",
			StartedAt: ptr(at(0)), FinishedAt: ptr(at(time.Minute))},
	}
	diffSteps(t, "Steps", mustSteps(t, db, "dev-01"), want)
}

func testFinishStep(t *testing.T, db *store.DB, clk *clock) {
	withSteps(t, db)
	output := map[string]string{"device_id": "mender-123", "note": "ünïcödé \"quoted\""}
	sealed := map[string][]byte{"key": {0x00, 0x01, 0x80, 0xff}, "cert": []byte("-----BEGIN-----\n"), "empty": {}}
	stepTx(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.StartStep(ctx, "dev-01", gatehouse.StepMender)
	})
	clk.Set(t0.Add(time.Minute))
	stepTx(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.FinishStep(ctx, "dev-01", gatehouse.StepMender, output, sealed)
	})
	want := []gatehouse.Step{
		{Name: gatehouse.StepMender, State: gatehouse.StepSucceeded, Attempts: 1,
			StartedAt: ptr(at(0)), FinishedAt: ptr(at(time.Minute)), Output: output, Sealed: sealed},
		{Name: gatehouse.StepVault, State: gatehouse.StepPending},
	}
	got := mustSteps(t, db, "dev-01")
	diffSteps(t, "Steps", got, want)
	// Empty values must survive too, not only the keys.
	if v, ok := got[0].Sealed["empty"]; !ok || len(v) != 0 {
		t.Errorf(`Sealed["empty"] = %v, %v; want empty, true`, v, ok)
	}
}

func testFinishStepAfterFailure(t *testing.T, db *store.DB, clk *clock) {
	withSteps(t, db)
	for _, fn := range []func(ctx context.Context, tx *store.Tx) error{
		func(ctx context.Context, tx *store.Tx) error {
			return tx.StartStep(ctx, "dev-01", gatehouse.StepMender)
		},
		func(ctx context.Context, tx *store.Tx) error {
			return tx.FailStep(ctx, "dev-01", gatehouse.StepMender, "timeout")
		},
		func(ctx context.Context, tx *store.Tx) error {
			return tx.StartStep(ctx, "dev-01", gatehouse.StepMender)
		},
		func(ctx context.Context, tx *store.Tx) error {
			return tx.FinishStep(ctx, "dev-01", gatehouse.StepMender, map[string]string{"a": "b"}, nil)
		},
	} {
		clk.Set(clk.Now().Add(time.Minute))
		stepTx(t, db, fn)
	}
	want := gatehouse.Step{Name: gatehouse.StepMender, State: gatehouse.StepSucceeded, Attempts: 2,
		StartedAt: ptr(at(3 * time.Minute)), FinishedAt: ptr(at(4 * time.Minute)), Output: map[string]string{"a": "b"}}
	diffStruct(t, "Step", mustSteps(t, db, "dev-01")[0], want) // LastError is cleared
}

func testClearSealed(t *testing.T, db *store.DB, _ *clock) {
	withSteps(t, db)
	mustCreate(t, db, newDevice("dev-02"))
	output := map[string]string{"id": "1"}
	sealed := map[string][]byte{"secret": []byte("s3cr3t")}
	stepTx(t, db, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.CreateSteps(ctx, "dev-02", []gatehouse.StepName{gatehouse.StepMender}); err != nil {
			return err
		}
		for _, id := range []string{"dev-01", "dev-02"} {
			if err := tx.FinishStep(ctx, id, gatehouse.StepMender, output, sealed); err != nil {
				return err
			}
		}
		return tx.FinishStep(ctx, "dev-01", gatehouse.StepVault, output, sealed)
	})
	stepTx(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.ClearSealed(ctx, "dev-01") })

	for _, s := range mustSteps(t, db, "dev-01") {
		if len(s.Sealed) != 0 {
			t.Errorf("dev-01 step %s Sealed = %v, want cleared", s.Name, s.Sealed)
		}
		if !same(s.Output, output) || s.State != gatehouse.StepSucceeded {
			t.Errorf("dev-01 step %s: output %v state %s, want %v succeeded (kept)", s.Name, s.Output, s.State, output)
		}
	}
	if got := mustSteps(t, db, "dev-02")[0].Sealed; !same(got, sealed) {
		t.Errorf("dev-02 Sealed = %v, want untouched %v", got, sealed)
	}
}

// --- events ---

func testEvents(t *testing.T, db *store.DB, clk *clock) {
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"))
	add := func(e gatehouse.Event) {
		t.Helper()
		inTx(t, db, func(tx *store.Tx) error { return tx.AddEvent(t.Context(), e) })
	}
	add(gatehouse.Event{DeviceID: "dev-01", Kind: "enrolled", Detail: "from 192.0.2.1"})
	clk.Set(t0.Add(time.Second))
	add(gatehouse.Event{DeviceID: "dev-02", Kind: "enrolled"})
	add(gatehouse.Event{DeviceID: "dev-01", Kind: "approved", Actor: "alice", Detail: "named gw",
		At: t0.Add(-24 * time.Hour), ID: 999}) // At and ID are the store's to set
	// The clock going backwards must not reorder the timeline.
	clk.Set(t0.Add(-time.Hour))
	add(gatehouse.Event{DeviceID: "dev-01", Kind: "dismissed", Actor: "bob"})

	var got []gatehouse.Event
	inTx(t, db, func(tx *store.Tx) (err error) {
		got, err = tx.Events(t.Context(), "dev-01")
		return err
	})
	want := []gatehouse.Event{
		{DeviceID: "dev-01", At: at(0), Kind: "enrolled", Detail: "from 192.0.2.1"},
		{DeviceID: "dev-01", At: at(time.Second), Kind: "approved", Actor: "alice", Detail: "named gw"},
		{DeviceID: "dev-01", At: at(-time.Hour), Kind: "dismissed", Actor: "bob"},
	}
	if len(got) != len(want) {
		t.Fatalf("Events = %+v, want %d events", got, len(want))
	}
	for i := range got {
		diffStruct(t, fmt.Sprintf("Events[%d]", i), got[i], want[i], "ID")
		if got[i].ID == 999 {
			t.Errorf("Events[%d].ID = 999, the caller's; want one the store assigned", i)
		}
		if i > 0 && got[i].ID <= got[i-1].ID {
			t.Errorf("Events[%d].ID = %d, not after Events[%d].ID = %d", i, got[i].ID, i-1, got[i-1].ID)
		}
	}
}

func testEventsNone(t *testing.T, db *store.DB, _ *clock) {
	var got []gatehouse.Event
	inTx(t, db, func(tx *store.Tx) (err error) {
		got, err = tx.Events(t.Context(), "dev-nope")
		return err
	})
	if len(got) != 0 {
		t.Errorf("Events = %+v, want none", got)
	}
}

// --- tokens ---

func mustToken(t *testing.T, db *store.DB, hash string) *gatehouse.Token {
	t.Helper()
	var tok *gatehouse.Token
	inTx(t, db, func(tx *store.Tx) (err error) {
		tok, err = tx.TokenByHash(t.Context(), hash)
		return err
	})
	return tok
}

func testCreateToken(t *testing.T, db *store.DB, _ *clock) {
	tok := &gatehouse.Token{ID: "tok-1", Name: "ci", Role: gatehouse.RoleOperator}
	inTx(t, db, func(tx *store.Tx) error { return tx.CreateToken(t.Context(), tok, "hash-1") })
	if !tok.CreatedAt.Equal(at(0)) {
		t.Errorf("CreateToken set CreatedAt = %v, want %v", tok.CreatedAt, at(0))
	}
	want := &gatehouse.Token{ID: "tok-1", Name: "ci", Role: gatehouse.RoleOperator, CreatedAt: at(0)}
	diffStruct(t, "Token", mustToken(t, db, "hash-1"), want)
}

func testCreateTokenDuplicateHash(t *testing.T, db *store.DB, _ *clock) {
	inTx(t, db, func(tx *store.Tx) error {
		return tx.CreateToken(t.Context(), &gatehouse.Token{ID: "tok-1", Name: "a", Role: gatehouse.RoleViewer}, "hash-1")
	})
	for _, tt := range []struct {
		name     string
		id, hash string
	}{{"hash", "tok-2", "hash-1"}, {"id", "tok-1", "hash-2"}} {
		err := txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
			return tx.CreateToken(ctx, &gatehouse.Token{ID: tt.id, Name: "b", Role: gatehouse.RoleAdmin}, tt.hash)
		})
		if !errors.Is(err, store.ErrUnique) {
			t.Errorf("CreateToken with taken %s: err = %v, want ErrUnique", tt.name, err)
		}
	}
}

func testTokenByHashNotFound(t *testing.T, db *store.DB, _ *clock) {
	inTx(t, db, func(tx *store.Tx) error {
		return tx.CreateToken(t.Context(), &gatehouse.Token{ID: "tok-1", Name: "a", Role: gatehouse.RoleViewer}, "hash-1")
	})
	err := txErr(t, db, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.TokenByHash(ctx, "hash-2")
		return err
	})
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testTouchToken(t *testing.T, db *store.DB, clk *clock) {
	inTx(t, db, func(tx *store.Tx) error {
		for _, id := range []string{"tok-1", "tok-2"} {
			if err := tx.CreateToken(t.Context(), &gatehouse.Token{ID: id, Name: id, Role: gatehouse.RoleViewer}, "hash-"+id); err != nil {
				return err
			}
		}
		return nil
	})
	clk.Set(t0.Add(time.Hour))
	inTx(t, db, func(tx *store.Tx) error { return tx.TouchToken(t.Context(), "tok-1") })

	got := mustToken(t, db, "hash-tok-1")
	want := &gatehouse.Token{ID: "tok-1", Name: "tok-1", Role: gatehouse.RoleViewer, CreatedAt: at(0), LastUsed: ptr(at(time.Hour))}
	diffStruct(t, "Token", got, want)
	if other := mustToken(t, db, "hash-tok-2"); other.LastUsed != nil {
		t.Errorf("other token LastUsed = %v, want nil", other.LastUsed)
	}
}

// --- transactions ---

func testInTxCommit(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	// A new transaction sees what an earlier one committed.
	if got := mustDevice(t, db, "dev-01"); got.ID != "dev-01" {
		t.Errorf("Device.ID = %q, want dev-01", got.ID)
	}
}

func testInTxRollback(t *testing.T, db *store.DB, _ *clock) {
	errBoom := errors.New("boom")
	d := newDevice("dev-01")
	err := db.InTx(t.Context(), func(tx *store.Tx) error {
		ctx := t.Context()
		if err := tx.CreateDevice(ctx, d, newKey(d)); err != nil {
			t.Fatal(err)
		}
		if err := tx.CreateSteps(ctx, "dev-01", []gatehouse.StepName{gatehouse.StepMender}); err != nil {
			t.Fatal(err)
		}
		if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: "dev-01", Kind: "enrolled"}); err != nil {
			t.Fatal(err)
		}
		if err := tx.CreateToken(ctx, &gatehouse.Token{ID: "tok-1", Name: "a", Role: gatehouse.RoleAdmin}, "hash-1"); err != nil {
			t.Fatal(err)
		}
		// The transaction sees its own writes.
		if _, err := tx.Device(ctx, "dev-01"); err != nil {
			t.Fatalf("Device inside the transaction: %v", err)
		}
		return fmt.Errorf("wrapped: %w", errBoom)
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want the error fn returned", err)
	}

	ctx := t.Context()
	inTx(t, db, func(tx *store.Tx) error {
		if _, err := tx.FindKey(ctx, d.Fingerprint); gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
			t.Errorf("FindKey after rollback: err = %v, want not found", err)
		}
		if _, err := tx.Device(ctx, "dev-01"); gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
			t.Errorf("Device after rollback: err = %v, want not found", err)
		}
		if ds, n, err := tx.Devices(ctx, store.DeviceFilter{}); err != nil || n != 0 || len(ds) != 0 {
			t.Errorf("Devices after rollback = %d devices, total %d, err %v; want none", len(ds), n, err)
		}
		if s, err := tx.Steps(ctx, "dev-01"); err != nil || len(s) != 0 {
			t.Errorf("Steps after rollback = %v, %v; want none", stepNames(s), err)
		}
		if e, err := tx.Events(ctx, "dev-01"); err != nil || len(e) != 0 {
			t.Errorf("Events after rollback = %+v, %v; want none", e, err)
		}
		if _, err := tx.TokenByHash(ctx, "hash-1"); gatehouse.ErrorCode(err) != gatehouse.ENOTFOUND {
			t.Errorf("TokenByHash after rollback: err = %v, want not found", err)
		}
		return nil
	})
}

func testInTxConcurrent(t *testing.T, db *store.DB, _ *clock) {
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			d := newDevice(fmt.Sprintf("dev-%02d", i))
			errs <- db.InTx(t.Context(), func(tx *store.Tx) error {
				if err := tx.CreateDevice(t.Context(), d, newKey(d)); err != nil {
					return err
				}
				return tx.AddEvent(t.Context(), gatehouse.Event{DeviceID: d.ID, Kind: "enrolled"})
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent InTx: %v", err)
		}
	}
	if _, total := mustDevices(t, db, store.DeviceFilter{}); total != n {
		t.Errorf("Devices total = %d, want %d", total, n)
	}
}

func testInTxClock(t *testing.T, db *store.DB, _ *clock) {
	// A clock that moves on every call: a transaction still reads it once.
	var mu sync.Mutex
	calls := 0
	db.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return t0.Add(time.Duration(calls-1) * time.Hour)
	}
	d := newDevice("dev-01")
	var txNow, txNowLater time.Time
	inTx(t, db, func(tx *store.Tx) error {
		ctx := t.Context()
		txNow = tx.Now()
		if err := tx.CreateDevice(ctx, d, newKey(d)); err != nil {
			return err
		}
		if err := tx.CreateSteps(ctx, d.ID, []gatehouse.StepName{gatehouse.StepMender}); err != nil {
			return err
		}
		if err := tx.StartStep(ctx, d.ID, gatehouse.StepMender); err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, gatehouse.Event{DeviceID: d.ID, Kind: "enrolled"}); err != nil {
			return err
		}
		if err := tx.CreateToken(ctx, &gatehouse.Token{ID: "tok-1", Name: "a", Role: gatehouse.RoleAdmin}, "hash-1"); err != nil {
			return err
		}
		if err := tx.TouchToken(ctx, "tok-1"); err != nil {
			return err
		}
		txNowLater = tx.Now()
		return nil
	})
	// tx.Now is the time rows carry: UTC at the store's precision.
	if !txNow.Equal(at(0)) || txNow.Location() != time.UTC {
		t.Errorf("tx.Now() = %v, want %v in UTC", txNow, at(0))
	}
	if !txNowLater.Equal(txNow) {
		t.Errorf("tx.Now() moved within the transaction: %v then %v", txNow, txNowLater)
	}

	dev := mustDevice(t, db, "dev-01")
	var events []gatehouse.Event
	inTx(t, db, func(tx *store.Tx) (err error) {
		events, err = tx.Events(t.Context(), "dev-01")
		return err
	})
	tok := mustToken(t, db, "hash-1")
	if len(dev.Steps) != 1 || len(events) != 1 {
		t.Fatalf("got %d steps and %d events, want 1 of each", len(dev.Steps), len(events))
	}
	for _, c := range []struct {
		name string
		got  time.Time
	}{
		{"Device.FirstSeen", dev.FirstSeen},
		{"Device.LastSeen", dev.LastSeen},
		{"Device.UpdatedAt", dev.UpdatedAt},
		{"Step.StartedAt", *dev.Steps[0].StartedAt},
		{"Event.At", events[0].At},
		{"Token.CreatedAt", tok.CreatedAt},
		{"Token.LastUsed", *tok.LastUsed},
	} {
		if !c.got.Equal(txNow) {
			t.Errorf("%s = %v, want the transaction's time %v", c.name, c.got, txNow)
		}
	}

	// The next transaction reads the clock afresh.
	inTx(t, db, func(tx *store.Tx) error {
		if got := tx.Now(); !got.After(txNow) {
			t.Errorf("next tx.Now() = %v, want after %v", got, txNow)
		}
		return nil
	})
}

// testJobsInTx: a job enqueued in a transaction exists once it commits and
// not at all if it rolls back, on the dialect's own River driver.
// testView: a read-only transaction sees what was committed before it,
// and returns fn's error.
func testView(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	boom := errors.New("boom")
	err := db.View(t.Context(), func(tx *store.Tx) error {
		d, err := tx.Device(t.Context(), "dev-01")
		if err != nil || d.ID != "dev-01" {
			t.Errorf("Device in View = %+v, %v", d, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("View = %v, want fn's error", err)
	}
}

func testJobsInTx(t *testing.T, db *store.DB, _ *clock) {
	ctx := t.Context()
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		_, err := tx.Enqueue(ctx, noopArgs{}, nil)
		return err
	}); err == nil || !strings.Contains(err.Error(), "no job queue") {
		t.Fatalf("Enqueue before NewJobs: %v, want a no-queue error", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[noopArgs]) error { return nil }))
	if _, err := db.NewJobs(&river.Config{Workers: workers}); err != nil {
		t.Fatalf("NewJobs: %v", err)
	}
	var kept int64
	inTx(t, db, func(tx *store.Tx) error {
		res, err := tx.Enqueue(ctx, noopArgs{}, nil)
		if err != nil {
			return err
		}
		kept = res.Job.ID
		return nil
	})
	var dropped int64
	errRollback := errors.New("roll back")
	if err := db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.EnqueueMany(ctx, []river.InsertManyParams{{Args: noopArgs{}}})
		if err != nil {
			return err
		}
		dropped = res[0].Job.ID
		return errRollback
	}); !errors.Is(err, errRollback) {
		t.Fatalf("InTx: %v", err)
	}
	inTx(t, db, func(tx *store.Tx) error {
		if job, err := tx.Job(ctx, kept); err != nil || job.Kind != "noop" {
			t.Errorf("committed job %d: %v, %v", kept, job, err)
		}
		if _, err := tx.Job(ctx, dropped); !errors.Is(err, river.ErrNotFound) {
			t.Errorf("rolled-back job %d: err = %v, want river.ErrNotFound", dropped, err)
		}
		if job, err := tx.CancelJob(ctx, kept); err != nil || job.State != rivertype.JobStateCancelled {
			t.Errorf("CancelJob(%d) = %v, %v; want cancelled", kept, job, err)
		}
		return nil
	})
}

type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

func testDBPing(t *testing.T, db *store.DB, _ *clock) {
	if err := db.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	v, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatalf("SchemaVersion: %v", err)
	}
	if v < 1 {
		t.Errorf("SchemaVersion = %d, want at least 1 after Open", v)
	}
}

func testDBClose(t *testing.T, db *store.DB, _ *clock) {
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Ping(t.Context()); err == nil {
		t.Error("Ping after Close = nil, want an error")
	}
	if err := db.InTx(t.Context(), func(*store.Tx) error { return nil }); err == nil {
		t.Error("InTx after Close = nil, want an error")
	}
}

func testSetStepJob(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	inTx(t, db, func(tx *store.Tx) error {
		if err := tx.CreateSteps(t.Context(), "dev-01", []gatehouse.StepName{gatehouse.StepDPS}); err != nil {
			return err
		}
		return tx.SetStepJob(t.Context(), "dev-01", gatehouse.StepDPS, 42)
	})
	if got := mustSteps(t, db, "dev-01")[0].JobID; got != 42 {
		t.Errorf("JobID = %d, want 42", got)
	}
	err := db.InTx(t.Context(), func(tx *store.Tx) error { return tx.SetStepJob(t.Context(), "dev-01", gatehouse.StepVault, 1) })
	wantCode(t, err, gatehouse.ENOTFOUND)
}

func testUpdateDeviceLabels(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"))
	if got := mustDevice(t, db, "dev-01").Labels; got != nil {
		t.Fatalf("new device labels = %v, want none", got)
	}
	labels := map[string]string{"group": "line-3", "site": "plant-a"}
	inTx(t, db, func(tx *store.Tx) error {
		return tx.UpdateDevice(t.Context(), "dev-01", store.DeviceUpdate{Labels: labels})
	})
	if got := mustDevice(t, db, "dev-01").Labels; len(got) != 2 || got["group"] != "line-3" || got["site"] != "plant-a" {
		t.Fatalf("labels = %v, want %v", got, labels)
	}
	inTx(t, db, func(tx *store.Tx) error { return tx.UpdateDevice(t.Context(), "dev-01", store.DeviceUpdate{}) })
	if got := mustDevice(t, db, "dev-01").Labels; len(got) != 2 {
		t.Fatalf("an update without labels changed them: %v", got)
	}
	inTx(t, db, func(tx *store.Tx) error {
		return tx.UpdateDevice(t.Context(), "dev-01", store.DeviceUpdate{Labels: map[string]string{}})
	})
	if got := mustDevice(t, db, "dev-01").Labels; got != nil {
		t.Fatalf("labels after clearing = %v", got)
	}
}

func testStepsOf(t *testing.T, db *store.DB, _ *clock) {
	mustCreate(t, db, newDevice("dev-01"), newDevice("dev-02"), newDevice("dev-03"))
	inTx(t, db, func(tx *store.Tx) error {
		if err := tx.CreateSteps(t.Context(), "dev-01", []gatehouse.StepName{gatehouse.StepVault, gatehouse.StepDPS}); err != nil {
			return err
		}
		return tx.CreateSteps(t.Context(), "dev-02", []gatehouse.StepName{gatehouse.StepMender})
	})
	var got map[string][]gatehouse.Step
	inTx(t, db, func(tx *store.Tx) (err error) {
		got, err = tx.StepsOf(t.Context(), []string{"dev-01", "dev-02", "dev-03", "dev-nope"})
		return err
	})
	if len(got["dev-01"]) != 2 || got["dev-01"][0].Name != gatehouse.StepDPS || len(got["dev-02"]) != 1 || len(got["dev-03"]) != 0 {
		t.Fatalf("StepsOf = %+v", got)
	}
	inTx(t, db, func(tx *store.Tx) (err error) {
		got, err = tx.StepsOf(t.Context(), nil)
		return err
	})
	if len(got) != 0 {
		t.Fatalf("StepsOf(nil) = %+v", got)
	}
}
