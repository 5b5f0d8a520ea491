package azure

import "gatehouse"

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
