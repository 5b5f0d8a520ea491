package simulate

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"sync"
	"time"

	"gatehouse"
)

var _ gatehouse.DPS = (*DPS)(nil)

// DefaultIDScope is the id scope NewDPS uses when given none.
const DefaultIDScope = "0ne00000000"

// registrationIDPattern is DPS's rule (alphanumerics and ": . _ -", no
// special character at either end, at most 128), restricted to lower case
// because DPS compares ids case-insensitively.
var registrationIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9:._-]{0,126}[a-z0-9])?$`)

// deviceIDPattern is IoT Hub's device id rule.
var deviceIDPattern = regexp.MustCompile(`^[A-Za-z0-9\-.%_*?!(),=@$':]{1,128}$`)

// DPS simulates the individual-enrollment part of Azure DPS's service API.
// It is safe for concurrent use.
type DPS struct {
	Faults

	idScope     string
	mu          sync.Mutex
	enrollments map[string]*dpsEnrollment
	order       []string // registration ids in creation order
}

type dpsEnrollment struct {
	e       gatehouse.Enrollment
	etag    string
	created time.Time
}

// NewDPS returns an empty DPS with the given id scope (DefaultIDScope if "").
func NewDPS(idScope string) *DPS {
	if idScope == "" {
		idScope = DefaultIDScope
	}
	return &DPS{idScope: idScope, enrollments: make(map[string]*dpsEnrollment)}
}

// IDScope returns the scope devices register under.
func (d *DPS) IDScope() string { return d.idScope }

// GetEnrollment answers like GET /enrollments/{id}.
func (d *DPS) GetEnrollment(ctx context.Context, registrationID string) (gatehouse.Enrollment, error) {
	if err := d.enter(ctx, "dps"); err != nil {
		return gatehouse.Enrollment{}, err
	}
	if err := validateRegistrationID(registrationID); err != nil {
		return gatehouse.Enrollment{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.enrollments[registrationID]
	if !ok {
		return gatehouse.Enrollment{}, fmt.Errorf("dps: 404 enrollment %q: %w", registrationID, gatehouse.ErrBackendNotFound)
	}
	return r.e, nil
}

// CreateEnrollment answers like PUT /enrollments/{id} with If-None-Match: *,
// so an existing enrollment is a conflict rather than overwritten.
func (d *DPS) CreateEnrollment(ctx context.Context, e gatehouse.Enrollment) (gatehouse.Enrollment, error) {
	if err := d.enter(ctx, "dps"); err != nil {
		return gatehouse.Enrollment{}, err
	}
	if err := validateEnrollment(e); err != nil {
		return gatehouse.Enrollment{}, err
	}
	if err := d.create(e); err != nil {
		return gatehouse.Enrollment{}, err
	}
	if err := d.lose("dps"); err != nil {
		return gatehouse.Enrollment{}, err
	}
	return e, nil
}

func (d *DPS) create(e gatehouse.Enrollment) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.enrollments[e.RegistrationID]; ok {
		return fmt.Errorf("dps: 409 conflict: enrollment %q: %w", e.RegistrationID, gatehouse.ErrBackendExists)
	}
	d.enrollments[e.RegistrationID] = &dpsEnrollment{e: e, etag: newETag(), created: time.Now().UTC()}
	d.order = append(d.order, e.RegistrationID)
	return nil
}

// Enrollments returns copies of all enrollments in creation order.
func (d *DPS) Enrollments() []gatehouse.Enrollment {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]gatehouse.Enrollment, 0, len(d.order))
	for _, id := range d.order {
		out = append(out, d.enrollments[id].e)
	}
	return out
}

// Meta returns an enrollment's etag and creation time (createdDateTimeUtc);
// ok is false for an unknown registration id.
func (d *DPS) Meta(registrationID string) (etag string, created time.Time, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.enrollments[registrationID]
	if !ok {
		return "", time.Time{}, false
	}
	return r.etag, r.created, true
}

// Len returns the number of enrollments.
func (d *DPS) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.enrollments)
}

func validateRegistrationID(id string) error {
	if !registrationIDPattern.MatchString(id) {
		return fmt.Errorf("dps: 400 invalid registration id %q", truncate(id, 140))
	}
	return nil
}

// validateEnrollment never puts key material into its errors: they end up
// in logs and in the operator's UI.
func validateEnrollment(e gatehouse.Enrollment) error {
	if err := validateRegistrationID(e.RegistrationID); err != nil {
		return err
	}
	if e.DeviceID != "" && !deviceIDPattern.MatchString(e.DeviceID) {
		return fmt.Errorf("dps: 400 invalid device id %q", truncate(e.DeviceID, 140))
	}
	if err := validateKey("primary", e.PrimaryKey); err != nil {
		return err
	}
	return validateKey("secondary", e.SecondaryKey)
}

func validateKey(which, key string) error {
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(b) < 16 || len(b) > 64 {
		return fmt.Errorf("dps: 400 invalid %s key: want base64 of 16 to 64 bytes", which)
	}
	return nil
}

func newETag() string {
	var b [8]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return `"` + hex.EncodeToString(b[:]) + `"`
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
