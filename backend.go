package gatehouse

import (
	"context"
	"errors"
)

// ErrBackendExists reports that a backend already holds an object under the
// key we tried to create. Steps treat it as "check it is ours, then done".
var ErrBackendExists = errors.New("already exists")

// ErrBackendNotFound reports that a backend has no object under a key.
var ErrBackendNotFound = errors.New("not found")

// MenderDevice is a device as Mender's device auth service knows it.
type MenderDevice struct {
	ID           string
	IdentityData map[string]string
	PublicKeys   []string // PEM "PUBLIC KEY" blocks of the device's auth sets
}

// Mender is the part of Mender's management API provisioning needs.
type Mender interface {
	// Preauthorize registers an identity and public key (PEM, PUBLIC KEY) and
	// returns Mender's device id. If the identity is already known it returns
	// the existing device and an error wrapping ErrBackendExists.
	Preauthorize(ctx context.Context, identity map[string]string, publicKeyPEM string) (MenderDevice, error)
	// SetTag sets one inventory tag on a device.
	SetTag(ctx context.Context, deviceID, name, value string) error
}

// Enrollment is an Azure DPS individual enrollment with symmetric-key
// attestation. The keys are base64 of 32 random bytes.
type Enrollment struct {
	RegistrationID string
	DeviceID       string
	IoTEdge        bool
	PrimaryKey     string
	SecondaryKey   string
}

// DPS is the part of Azure DPS's service API provisioning needs.
type DPS interface {
	// IDScope is the scope devices use to register with this DPS instance.
	IDScope() string
	// GetEnrollment returns an enrollment, or an error wrapping ErrBackendNotFound.
	GetEnrollment(ctx context.Context, registrationID string) (Enrollment, error)
	// CreateEnrollment creates an enrollment; an existing one under the same
	// registration id is an error wrapping ErrBackendExists.
	CreateEnrollment(ctx context.Context, e Enrollment) (Enrollment, error)
}

// Certificate is a certificate issued by the PKI, with the key it was issued for.
type Certificate struct {
	Serial         string
	CertificatePEM string
	PrivateKeyPEM  string
	CAChainPEM     string
}

// PKI is a Vault/OpenBao PKI secrets engine.
type PKI interface {
	// Issue issues a certificate with a new key pair for the common name.
	Issue(ctx context.Context, commonName string) (Certificate, error)
}

// Backends are the services a gateway is provisioned into. A nil field means
// that backend is not used, and its step is skipped.
type Backends struct {
	Mender Mender
	DPS    DPS
	PKI    PKI
}
