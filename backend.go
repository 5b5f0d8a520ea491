package gatehouse

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrBackendExists reports that a backend already holds an object under the
// key we tried to create. Steps treat it as "check it is ours, then done".
var ErrBackendExists = errors.New("already exists")

// ErrBackendNotFound reports that a backend has no object under a key.
var ErrBackendNotFound = errors.New("not found")

// Mender auth-set and device statuses, as deviceauth names them.
const (
	MenderPending       = "pending"
	MenderPreauthorized = "preauthorized"
	MenderAccepted      = "accepted"
	MenderRejected      = "rejected"
	MenderNoAuth        = "noauth"
)

// MenderAuthSet is one identity-and-key pair a Mender device has presented
// (or been preauthorized with).
type MenderAuthSet struct {
	ID        string
	PublicKey string // PEM "PUBLIC KEY", as deviceauth stores it
	Status    string // pending, preauthorized, accepted, rejected
}

// MenderDevice is a device as Mender's device auth service knows it.
// AuthSets is nil when the answer did not carry them: deviceauth's
// preauthorize 409 never does, so read the device with GetDevice.
type MenderDevice struct {
	ID              string
	IdentityData    map[string]string
	Status          string
	AuthSets        []MenderAuthSet
	Decommissioning bool
}

// Mender is the part of Mender's management API provisioning needs.
type Mender interface {
	// Preauthorize registers an identity and public key (PEM, PUBLIC KEY) and
	// returns Mender's device id. If the identity is already known it returns
	// the existing device (its id; auth sets only if the answer held them)
	// and an error wrapping ErrBackendExists. With force, a known identity
	// gets the key as a new preauthorized auth set instead (deviceauth's
	// "force": true).
	Preauthorize(ctx context.Context, identity map[string]string, publicKeyPEM string, force bool) (MenderDevice, error)
	// GetDevice returns a device with its auth sets, or an error wrapping
	// ErrBackendNotFound.
	GetDevice(ctx context.Context, deviceID string) (MenderDevice, error)
	// SetAuthSetStatus moves one auth set to accepted, rejected, pending or
	// preauthorized. Accepting one rejects the device's other accepted or
	// preauthorized sets, as deviceauth does.
	SetAuthSetStatus(ctx context.Context, deviceID, authSetID, status string) error
	// SetTag sets (upserts) one inventory tag on a device. Inventory
	// answers success even for a device it does not hold yet, and then
	// stores nothing: read it back with Tags.
	SetTag(ctx context.Context, deviceID, name, value string) error
	// Tags returns a device's inventory tags, or an error wrapping
	// ErrBackendNotFound while inventory does not hold the device.
	Tags(ctx context.Context, deviceID string) (map[string]string, error)
	// FindByTag returns the ids of devices whose inventory tag name equals value.
	FindByTag(ctx context.Context, name, value string) ([]string, error)
	// Decommission removes a device and its auth sets; an unknown device is
	// an error wrapping ErrBackendNotFound.
	Decommission(ctx context.Context, deviceID string) error
}

// Enrollment is an Azure DPS individual enrollment with symmetric-key
// attestation. The keys are base64 of 32 random bytes.
type Enrollment struct {
	RegistrationID string
	DeviceID       string
	IoTEdge        bool
	PrimaryKey     string
	SecondaryKey   string
	ETag           string
}

// Registration is where DPS has assigned a device that registered.
type Registration struct {
	RegistrationID string
	Status         string // unassigned, assigning, assigned, failed, disabled
	AssignedHub    string // IoT Hub host name, once assigned
	DeviceID       string
	ErrorMessage   string
}

// DPS is the part of Azure DPS's service API provisioning needs.
type DPS interface {
	// IDScope is the scope devices use to register with this DPS instance.
	IDScope() string
	// GetEnrollment returns an enrollment, or an error wrapping ErrBackendNotFound.
	GetEnrollment(ctx context.Context, registrationID string) (Enrollment, error)
	// CreateEnrollment creates an enrollment, or replaces one with the same
	// registration id (DPS's create-or-update), and returns what DPS stored.
	CreateEnrollment(ctx context.Context, e Enrollment) (Enrollment, error)
	// DeleteEnrollment deletes an enrollment; absent is ErrBackendNotFound.
	DeleteEnrollment(ctx context.Context, registrationID string) error
	// DeleteRegistration deletes a device's registration state record (not
	// its hub identity); absent is ErrBackendNotFound.
	DeleteRegistration(ctx context.Context, registrationID string) error
	// Registration returns a device's registration state, or an error
	// wrapping ErrBackendNotFound before the device has registered.
	Registration(ctx context.Context, registrationID string) (Registration, error)
}

// HubDevice is a device identity in an IoT Hub.
type HubDevice struct {
	DeviceID        string
	Status          string
	ConnectionState string
	IoTEdge         bool
}

// IoTHub is the part of the IoT Hub service API gatehouse needs, over every
// hub it holds credentials for, addressed by host name.
type IoTHub interface {
	// Hubs lists the host names gatehouse holds credentials for.
	Hubs() []string
	// GetDevice returns a device, or an error wrapping ErrBackendNotFound.
	GetDevice(ctx context.Context, hub, deviceID string) (HubDevice, error)
	// DeleteDevice deletes a device identity.
	DeleteDevice(ctx context.Context, hub, deviceID string) error
	// ApplyConfiguration sets an edge device's modules (applyConfigurationContent).
	ApplyConfiguration(ctx context.Context, hub, deviceID string, content json.RawMessage) error
}

// Certificate is a certificate issued by the PKI. PrivateKeyPEM is empty when
// the PKI signed a CSR: the key never left the device.
type Certificate struct {
	Serial         string
	CertificatePEM string
	PrivateKeyPEM  string
	CAChainPEM     string
	// Warnings are what the PKI said about the request (for example that
	// it capped the TTL at the role's max_ttl).
	Warnings []string
}

// IssuedCert is one certificate in the PKI's store, as a listing shows it.
type IssuedCert struct {
	Serial     string
	CommonName string
	NotBefore  time.Time
	NotAfter   time.Time
}

// PKI is a Vault/OpenBao PKI secrets engine.
type PKI interface {
	// Issue issues a certificate with a new key pair for the common name.
	Issue(ctx context.Context, commonName string) (Certificate, error)
	// Sign signs a device's CSR (PEM) for the common name.
	Sign(ctx context.Context, commonName, csrPEM string) (Certificate, error)
	// Revoke revokes a certificate by its serial (colon-separated hex).
	// Revoking twice succeeds; an unknown serial wraps ErrBackendNotFound.
	Revoke(ctx context.Context, serial string) error
	// Issued lists the stored certificates for commonName whose validity
	// starts at or after since (revoked ones included), so a step whose
	// answer was lost can find and revoke what it issued.
	Issued(ctx context.Context, commonName string, since time.Time) ([]IssuedCert, error)
}
