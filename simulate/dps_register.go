package simulate

import (
	"context"
	"crypto/subtle"
	"net/http"
	"time"

	"gatehouse"
)

// Registration states DPS reports (service.json EnrollmentStatus).
const (
	RegistrationAssigning = "assigning"
	RegistrationAssigned  = "assigned"
	RegistrationFailed    = "failed"
)

// dpsRegistration is a device registration record.
type dpsRegistration struct {
	r          gatehouse.Registration
	etag       string
	created    time.Time
	updated    time.Time
	generation int // which Register call this record belongs to
}

// SetAssignDelay makes later registrations stay "assigning" for d before
// they turn "assigned" and the device appears in the hub.
func (d *DPS) SetAssignDelay(delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.assignDelay = delay
}

// Registration answers like GET /registrations/{id}: 404 until the device
// has registered.
func (d *DPS) Registration(ctx context.Context, registrationID string) (gatehouse.Registration, error) {
	if err := d.enter(ctx, "dps"); err != nil {
		return gatehouse.Registration{}, err
	}
	if err := validateRegistrationID(registrationID); err != nil {
		return gatehouse.Registration{}, err
	}
	rec, ok := d.registration(registrationID)
	if !ok {
		return gatehouse.Registration{}, registrationNotFound(registrationID)
	}
	return rec.r, nil
}

func (d *DPS) registration(registrationID string) (dpsRegistration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec, ok := d.registrations[registrationID]
	if !ok {
		return dpsRegistration{}, false
	}
	return *rec, true
}

func registrationNotFound(registrationID string) error {
	return azErr("dps", http.StatusNotFound, 404202, gatehouse.ErrBackendNotFound, "registration %q", registrationID)
}

// Register does what a device does with the DPS device API: it proves it
// holds the enrollment's primary or secondary key and gets assigned to hub
// ("" for the linked Hub's first). After the assign delay the registration
// is "assigned" and, with Hub set, the device exists in that hub.
func (d *DPS) Register(registrationID, symmetricKey, hub string) error {
	hub, err := d.pickHub(hub)
	if err != nil {
		return err
	}
	e, gen, delay, err := d.startRegistration(registrationID, symmetricKey)
	if err != nil {
		return err
	}
	if delay <= 0 {
		d.assign(e, gen, hub)
		return nil
	}
	time.AfterFunc(delay, func() { d.assign(e, gen, hub) })
	return nil
}

func (d *DPS) pickHub(hub string) (string, error) {
	if d.Hub == nil {
		if hub == "" {
			return "", azErr("dps", http.StatusBadRequest, 400004, nil, "no IoT Hub linked to assign devices to")
		}
		return hub, nil
	}
	if hub == "" {
		return d.Hub.Hubs()[0], nil
	}
	if !d.Hub.has(hub) {
		return "", azErr("dps", http.StatusBadRequest, 400004, nil, "IoT Hub %s is not linked to this DPS", hub)
	}
	return hub, nil
}

// startRegistration checks the key and records the registration as
// assigning. Keys are never part of its errors.
func (d *DPS) startRegistration(registrationID, key string) (gatehouse.Enrollment, int, time.Duration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, ok := d.enrollments[registrationID]
	switch {
	case !ok:
		return gatehouse.Enrollment{}, 0, 0, enrollmentNotFound(registrationID)
	case !keyMatches(key, cur.e.PrimaryKey) && !keyMatches(key, cur.e.SecondaryKey):
		return gatehouse.Enrollment{}, 0, 0, azErr("dps", http.StatusUnauthorized, 401002, nil,
			"registration %q: the key does not match the enrollment", registrationID)
	case cur.disabled:
		return gatehouse.Enrollment{}, 0, 0, azErr("dps", http.StatusForbidden, 403001, nil,
			"registration %q: the enrollment is disabled", registrationID)
	}
	now := time.Now().UTC()
	rec, ok := d.registrations[registrationID]
	if !ok {
		rec = &dpsRegistration{created: now}
		d.registrations[registrationID] = rec
	}
	rec.generation++
	rec.r = gatehouse.Registration{RegistrationID: registrationID, Status: RegistrationAssigning,
		DeviceID: deviceIDOf(cur.e)}
	rec.etag, rec.updated = newETag(), now
	return cur.e, rec.generation, d.assignDelay, nil
}

// assign finishes a registration: the hub identity first, so whoever sees
// "assigned" also finds the device in the hub.
func (d *DPS) assign(e gatehouse.Enrollment, gen int, hub string) {
	errMsg := ""
	if d.Hub != nil {
		if err := d.Hub.provision(hub, deviceIDOf(e), e.IoTEdge, e.PrimaryKey, e.SecondaryKey); err != nil {
			errMsg = err.Error()
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rec, ok := d.registrations[e.RegistrationID]
	if !ok || rec.generation != gen {
		return // deleted or re-registered meanwhile
	}
	rec.r.Status, rec.r.AssignedHub, rec.r.ErrorMessage = RegistrationAssigned, hub, ""
	if errMsg != "" {
		rec.r.Status, rec.r.AssignedHub, rec.r.ErrorMessage = RegistrationFailed, "", errMsg
	}
	rec.etag, rec.updated = newETag(), time.Now().UTC()
}

// DeleteRegistration answers like DELETE /registrations/{id}: the
// registration record goes, the enrollment and any hub identity stay
// (external-apis.md §2.5).
func (d *DPS) DeleteRegistration(ctx context.Context, registrationID string) error {
	if err := d.enter(ctx, "dps"); err != nil {
		return err
	}
	if err := validateRegistrationID(registrationID); err != nil {
		return err
	}
	if err := d.removeRegistration(registrationID, ""); err != nil {
		return err
	}
	return d.lose("dps")
}

// removeRegistration answers like DELETE /registrations/{id}.
func (d *DPS) removeRegistration(registrationID, ifMatch string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec, ok := d.registrations[registrationID]
	if !ok {
		return registrationNotFound(registrationID)
	}
	if ifMatch != "" && !etagMatches(ifMatch, rec.etag) {
		return azErr("dps", http.StatusPreconditionFailed, 412001, nil, "registration %q: etag does not match If-Match", registrationID)
	}
	delete(d.registrations, registrationID)
	return nil
}

// deviceIDOf is the hub device id DPS gives an enrollment's device.
func deviceIDOf(e gatehouse.Enrollment) string {
	if e.DeviceID != "" {
		return e.DeviceID
	}
	return e.RegistrationID
}

func keyMatches(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
