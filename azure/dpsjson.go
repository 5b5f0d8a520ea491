package azure

import (
	"time"

	"gatehouse"
)

// Wire shapes of the DPS service API (service.json, 2021-10-01), limited to
// the fields gatehouse reads or writes.

type enrollmentJSON struct {
	RegistrationID     string            `json:"registrationId"`
	DeviceID           string            `json:"deviceId,omitempty"`
	Attestation        attestationJSON   `json:"attestation"`
	Capabilities       capabilitiesJSON  `json:"capabilities"`
	ProvisioningStatus string            `json:"provisioningStatus,omitempty"`
	ETag               string            `json:"etag,omitempty"`
	RegistrationState  *registrationJSON `json:"registrationState,omitempty"`
	// Read-only; a PUT's answer tells with them whether it replaced an
	// enrollment made earlier.
	Created string `json:"createdDateTimeUtc,omitempty"`
	Updated string `json:"lastUpdatedDateTimeUtc,omitempty"`
}

type attestationJSON struct {
	Type         string            `json:"type"`
	SymmetricKey *symmetricKeyJSON `json:"symmetricKey,omitempty"`
}

type symmetricKeyJSON struct {
	PrimaryKey   string `json:"primaryKey,omitempty"`
	SecondaryKey string `json:"secondaryKey,omitempty"`
}

type capabilitiesJSON struct {
	IoTEdge bool `json:"iotEdge"`
}

type registrationJSON struct {
	RegistrationID string `json:"registrationId"`
	AssignedHub    string `json:"assignedHub"`
	DeviceID       string `json:"deviceId"`
	Status         string `json:"status"`
	ErrorMessage   string `json:"errorMessage"`
}

// newEnrollmentJSON is the body of a PUT. The etag travels in If-Match, not
// in the body, so the service has one place to compare it.
func newEnrollmentJSON(e gatehouse.Enrollment) enrollmentJSON {
	return enrollmentJSON{
		RegistrationID: e.RegistrationID,
		DeviceID:       e.DeviceID,
		Attestation: attestationJSON{Type: "symmetricKey", SymmetricKey: &symmetricKeyJSON{
			PrimaryKey: e.PrimaryKey, SecondaryKey: e.SecondaryKey,
		}},
		Capabilities:       capabilitiesJSON{IoTEdge: e.IoTEdge},
		ProvisioningStatus: "enabled",
	}
}

func (e enrollmentJSON) domain() gatehouse.Enrollment {
	out := gatehouse.Enrollment{
		RegistrationID: e.RegistrationID,
		DeviceID:       e.DeviceID,
		IoTEdge:        e.Capabilities.IoTEdge,
		ETag:           e.ETag,
	}
	if k := e.Attestation.SymmetricKey; k != nil {
		out.PrimaryKey, out.SecondaryKey = k.PrimaryKey, k.SecondaryKey
	}
	return out
}

func (r registrationJSON) domain() gatehouse.Registration {
	return gatehouse.Registration{
		RegistrationID: r.RegistrationID,
		Status:         r.Status,
		AssignedHub:    r.AssignedHub,
		DeviceID:       r.DeviceID,
		ErrorMessage:   r.ErrorMessage,
	}
}

// replacedTolerance is how far apart a fresh enrollment's creation and
// update times may be without counting as a replacement. DPS stamps both at
// creation; whether to the same instant is unconfirmed, so a little slack.
const replacedTolerance = time.Second

// replaced says whether a PUT's answer is of an enrollment that existed
// before the PUT: a device has registered with it, or it was created well
// before this update.
func (e enrollmentJSON) replaced() (bool, string) {
	if e.RegistrationState != nil && e.RegistrationState.Status != "" {
		return true, "a device has registered with it"
	}
	created, err1 := time.Parse(time.RFC3339Nano, e.Created)
	updated, err2 := time.Parse(time.RFC3339Nano, e.Updated)
	if err1 != nil || err2 != nil || updated.Sub(created) <= replacedTolerance {
		return false, ""
	}
	return true, "it was created at " + e.Created
}
