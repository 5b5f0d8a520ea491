package simulate

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"gatehouse"
)

// The DPS service API's JSON, per service.json (2021-10-01). The simulator
// keeps its own types rather than sharing the client's, so a field the two
// disagree on shows up as a failing test.

type enrollmentWire struct {
	RegistrationID         string            `json:"registrationId"`
	DeviceID               string            `json:"deviceId,omitempty"`
	RegistrationState      *registrationView `json:"registrationState,omitempty"`
	Attestation            attestationWire   `json:"attestation"`
	Capabilities           capabilitiesWire  `json:"capabilities"`
	ETag                   string            `json:"etag,omitempty"`
	ProvisioningStatus     string            `json:"provisioningStatus,omitempty"`
	ReprovisionPolicy      *reprovisionWire  `json:"reprovisionPolicy,omitempty"`
	AllocationPolicy       string            `json:"allocationPolicy,omitempty"`
	CreatedDateTimeUTC     string            `json:"createdDateTimeUtc,omitempty"`
	LastUpdatedDateTimeUTC string            `json:"lastUpdatedDateTimeUtc,omitempty"`
}

type attestationWire struct {
	Type         string            `json:"type"`
	SymmetricKey *symmetricKeyWire `json:"symmetricKey,omitempty"`
}

type symmetricKeyWire struct {
	PrimaryKey   string `json:"primaryKey,omitempty"`
	SecondaryKey string `json:"secondaryKey,omitempty"`
}

type capabilitiesWire struct {
	IoTEdge bool `json:"iotEdge"`
}

type reprovisionWire struct {
	UpdateHubAssignment bool `json:"updateHubAssignment"`
	MigrateDeviceData   bool `json:"migrateDeviceData"`
}

type registrationView struct {
	RegistrationID         string `json:"registrationId"`
	CreatedDateTimeUTC     string `json:"createdDateTimeUtc"`
	AssignedHub            string `json:"assignedHub,omitempty"`
	DeviceID               string `json:"deviceId"`
	Status                 string `json:"status"`
	Substatus              string `json:"substatus,omitempty"`
	ErrorMessage           string `json:"errorMessage,omitempty"`
	LastUpdatedDateTimeUTC string `json:"lastUpdatedDateTimeUtc"`
	ETag                   string `json:"etag"`
}

// enrollment checks a PUT body against the path's id and the simulator's
// rules, generating keys the body leaves out. Read-only fields are ignored.
func (b enrollmentWire) enrollment(pathID string) (gatehouse.Enrollment, bool, error) {
	if !strings.EqualFold(b.RegistrationID, pathID) {
		return gatehouse.Enrollment{}, false, azErr("dps", http.StatusBadRequest, 400004, nil,
			"registrationId %q does not match the path", truncate(b.RegistrationID, 140))
	}
	if b.Attestation.Type != "symmetricKey" {
		return gatehouse.Enrollment{}, false, azErr("dps", http.StatusBadRequest, 400004, nil,
			"attestation type %q is not simulated; use symmetricKey", truncate(b.Attestation.Type, 40))
	}
	if s := b.ProvisioningStatus; s != "" && s != "enabled" && s != "disabled" {
		return gatehouse.Enrollment{}, false, azErr("dps", http.StatusBadRequest, 400004, nil, "invalid provisioningStatus %q", truncate(s, 40))
	}
	keys := symmetricKeyWire{}
	if b.Attestation.SymmetricKey != nil {
		keys = *b.Attestation.SymmetricKey
	}
	e := gatehouse.Enrollment{
		RegistrationID: pathID, DeviceID: b.DeviceID, IoTEdge: b.Capabilities.IoTEdge,
		PrimaryKey: orNewKey(keys.PrimaryKey), SecondaryKey: orNewKey(keys.SecondaryKey),
	}
	return e, b.ProvisioningStatus == "disabled", validateEnrollment(e)
}

func orNewKey(k string) string {
	if k != "" {
		return k
	}
	var b [64]byte // what the portal generates
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// view is an enrollment as GET /enrollments/{id} answers it.
func (d *DPS) view(registrationID string) (enrollmentWire, error) {
	if err := validateRegistrationID(registrationID); err != nil {
		return enrollmentWire{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, ok := d.enrollments[registrationID]
	if !ok {
		return enrollmentWire{}, enrollmentNotFound(registrationID)
	}
	return d.viewLocked(cur), nil
}

func (d *DPS) viewLocked(cur *dpsEnrollment) enrollmentWire {
	status := "enabled"
	if cur.disabled {
		status = "disabled"
	}
	v := enrollmentWire{
		RegistrationID: cur.e.RegistrationID,
		DeviceID:       cur.e.DeviceID,
		Attestation: attestationWire{Type: "symmetricKey", SymmetricKey: &symmetricKeyWire{
			PrimaryKey: cur.e.PrimaryKey, SecondaryKey: cur.e.SecondaryKey}},
		Capabilities:           capabilitiesWire{IoTEdge: cur.e.IoTEdge},
		ETag:                   cur.e.ETag,
		ProvisioningStatus:     status,
		ReprovisionPolicy:      &reprovisionWire{UpdateHubAssignment: true, MigrateDeviceData: true},
		AllocationPolicy:       "hashed",
		CreatedDateTimeUTC:     azTime(cur.created),
		LastUpdatedDateTimeUTC: azTime(cur.updated),
	}
	if rec, ok := d.registrations[cur.e.RegistrationID]; ok {
		rv := registrationWire(*rec)
		v.RegistrationState = &rv
	}
	return v
}

// page returns up to limit enrollments from offset from, in creation
// order, and the offset of the next page (0 when there is none).
func (d *DPS) page(from, limit int) ([]enrollmentWire, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if limit <= 0 {
		limit = 100
	}
	from = min(max(from, 0), len(d.order))
	to := min(from+limit, len(d.order))
	out := make([]enrollmentWire, 0, to-from)
	for _, id := range d.order[from:to] {
		out = append(out, d.viewLocked(d.enrollments[id]))
	}
	if to == len(d.order) {
		return out, 0
	}
	return out, to
}

func registrationWire(rec dpsRegistration) registrationView {
	v := registrationView{
		RegistrationID:         rec.r.RegistrationID,
		CreatedDateTimeUTC:     azTime(rec.created),
		AssignedHub:            rec.r.AssignedHub,
		DeviceID:               rec.r.DeviceID,
		Status:                 rec.r.Status,
		ErrorMessage:           rec.r.ErrorMessage,
		LastUpdatedDateTimeUTC: azTime(rec.updated),
		ETag:                   rec.etag,
	}
	if rec.r.Status == RegistrationAssigned {
		v.Substatus = "initialAssignment"
	}
	return v
}

func azTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
