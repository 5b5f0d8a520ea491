package simulate

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
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

// DPS simulates the individual-enrollment part of Azure DPS's service API,
// and the device side's registration. It is safe for concurrent use. Its
// methods are the in-process API, subject to Faults; DPSServer serves the
// same state over DPS's HTTP API.
type DPS struct {
	Faults

	// Hub, when set, gets the device identity when a registration is
	// assigned, as a DPS linked to that IoT Hub would create it. Set it
	// before the first Register.
	Hub *Hub

	idScope       string
	mu            sync.Mutex
	enrollments   map[string]*dpsEnrollment
	order         []string // registration ids in creation order
	registrations map[string]*dpsRegistration
	assignDelay   time.Duration
}

type dpsEnrollment struct {
	e        gatehouse.Enrollment // e.ETag is the current etag
	created  time.Time
	updated  time.Time
	disabled bool
}

// NewDPS returns an empty DPS with the given id scope (DefaultIDScope if "").
func NewDPS(idScope string) *DPS {
	if idScope == "" {
		idScope = DefaultIDScope
	}
	return &DPS{
		idScope:       idScope,
		enrollments:   make(map[string]*dpsEnrollment),
		registrations: make(map[string]*dpsRegistration),
	}
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
		return gatehouse.Enrollment{}, enrollmentNotFound(registrationID)
	}
	return r.e, nil
}

// CreateEnrollment answers like PUT /enrollments/{id}. Without e.ETag an
// existing enrollment is a conflict rather than overwritten, so racing
// creators cannot swap keys under each other; with e.ETag it replaces that
// version only (If-Match), and a stale etag is a 412.
func (d *DPS) CreateEnrollment(ctx context.Context, e gatehouse.Enrollment) (gatehouse.Enrollment, error) {
	if err := d.enter(ctx, "dps"); err != nil {
		return gatehouse.Enrollment{}, err
	}
	if err := validateEnrollment(e); err != nil {
		return gatehouse.Enrollment{}, err
	}
	stored, err := d.put(e, e.ETag, false, false)
	if err != nil {
		return gatehouse.Enrollment{}, err
	}
	if err := d.lose("dps"); err != nil {
		return gatehouse.Enrollment{}, err
	}
	return stored, nil
}

// put stores e. ifMatch, if set, must match the current etag (RFC 7232: an
// absent enrollment matches nothing). Without it an existing enrollment is
// replaced only if overwrite is set, else it is a 409.
func (d *DPS) put(e gatehouse.Enrollment, ifMatch string, overwrite, disabled bool) (gatehouse.Enrollment, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now().UTC()
	cur, exists := d.enrollments[e.RegistrationID]
	switch {
	case ifMatch != "" && (!exists || !etagMatches(ifMatch, cur.e.ETag)):
		return gatehouse.Enrollment{}, azErr("dps", http.StatusPreconditionFailed, 412001, nil,
			"enrollment %q: etag does not match If-Match", e.RegistrationID)
	case exists && ifMatch == "" && !overwrite:
		return gatehouse.Enrollment{}, azErr("dps", http.StatusConflict, 409201, gatehouse.ErrBackendExists,
			"conflict: enrollment %q", e.RegistrationID)
	case !exists:
		cur = &dpsEnrollment{created: now}
		d.enrollments[e.RegistrationID] = cur
		d.order = append(d.order, e.RegistrationID)
	}
	e.ETag = newETag()
	cur.e, cur.updated, cur.disabled = e, now, disabled
	return e, nil
}

// DeleteEnrollment answers like DELETE /enrollments/{id}. The enrollment's
// registration record goes with it; a hub identity stays, as in Azure.
func (d *DPS) DeleteEnrollment(ctx context.Context, registrationID string) error {
	if err := d.enter(ctx, "dps"); err != nil {
		return err
	}
	if err := validateRegistrationID(registrationID); err != nil {
		return err
	}
	if err := d.remove(registrationID, ""); err != nil {
		return err
	}
	return d.lose("dps")
}

func (d *DPS) remove(registrationID, ifMatch string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, ok := d.enrollments[registrationID]
	if !ok {
		return enrollmentNotFound(registrationID)
	}
	if ifMatch != "" && !etagMatches(ifMatch, cur.e.ETag) {
		return azErr("dps", http.StatusPreconditionFailed, 412001, nil, "enrollment %q: etag does not match If-Match", registrationID)
	}
	delete(d.enrollments, registrationID)
	delete(d.registrations, registrationID)
	for i, id := range d.order {
		if id == registrationID {
			d.order = append(d.order[:i], d.order[i+1:]...)
			break
		}
	}
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
	return r.e.ETag, r.created, true
}

// Backdate moves an enrollment's creation time back by d, as if it had
// been made that long ago; it reports whether the enrollment exists.
func (d *DPS) Backdate(registrationID string, by time.Duration) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.enrollments[registrationID]
	if ok {
		r.created = r.created.Add(-by)
	}
	return ok
}

// Len returns the number of enrollments.
func (d *DPS) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.enrollments)
}

func enrollmentNotFound(registrationID string) error {
	return azErr("dps", http.StatusNotFound, 404201, gatehouse.ErrBackendNotFound, "enrollment %q", registrationID)
}

func validateRegistrationID(id string) error {
	if !registrationIDPattern.MatchString(id) {
		return azErr("dps", http.StatusBadRequest, 400004, nil, "invalid registration id %q", truncate(id, 140))
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
		return azErr("dps", http.StatusBadRequest, 400004, nil, "invalid device id %q", truncate(e.DeviceID, 140))
	}
	if err := validateKey("primary", e.PrimaryKey); err != nil {
		return err
	}
	return validateKey("secondary", e.SecondaryKey)
}

func validateKey(which, key string) error {
	b, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(b) < 16 || len(b) > 64 {
		return azErr("dps", http.StatusBadRequest, 400004, nil, "invalid %s key: want base64 of 16 to 64 bytes", which)
	}
	return nil
}

// azureError is a refusal as DPS or IoT Hub would answer it over HTTP: the
// servers answer with its status and numeric error code, the in-process API
// returns it as is.
type azureError struct {
	service string
	status  int
	code    int
	msg     string
	kind    error // a gatehouse sentinel, if any
}

func azErr(service string, status, code int, kind error, format string, args ...any) error {
	return &azureError{service: service, status: status, code: code, kind: kind, msg: fmt.Sprintf(format, args...)}
}

func (e *azureError) Error() string {
	return fmt.Sprintf("%s: %d %s", e.service, e.status, e.text())
}

// text is the message the HTTP servers put in their error bodies.
func (e *azureError) text() string {
	if e.kind != nil {
		return e.msg + ": " + e.kind.Error()
	}
	return e.msg
}

func (e *azureError) Unwrap() error { return e.kind }

// asAzureError finds the refusal in err; anything else is a 500.
func asAzureError(err error) *azureError {
	var ae *azureError
	if errors.As(err, &ae) {
		return ae
	}
	return &azureError{status: http.StatusInternalServerError, code: 500000, msg: "internal error"}
}

// etagMatches compares an If-Match value with an etag, ignoring quotes and
// weakness (a simulator need not be stricter than that), "*" matching any.
func etagMatches(ifMatch, etag string) bool {
	norm := func(s string) string { return strings.Trim(strings.TrimPrefix(strings.TrimSpace(s), "W/"), `"`) }
	for _, v := range strings.Split(ifMatch, ",") {
		if v = strings.TrimSpace(v); v == "*" || norm(v) == norm(etag) {
			return true
		}
	}
	return false
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
