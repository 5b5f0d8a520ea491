package gatehouse

import (
	"crypto/x509"
	"encoding/pem"
	"time"
)

// Where a kept certificate came from.
const (
	CertFromProvision = "provision"
	CertFromRenewal   = "renewal"
	CertFromRekey     = "rekey"
)

// DeviceCert is a certificate the PKI issued for a gateway, as gatehouse
// keeps it: enough to revoke it and to warn before it expires.
type DeviceCert struct {
	Serial      string     `json:"serial"`
	DeviceID    string     `json:"device_id"`
	Fingerprint string     `json:"fingerprint"` // the device key it was issued while current
	Origin      string     `json:"origin"`      // provision, renewal or rekey
	NotBefore   time.Time  `json:"not_before"`
	NotAfter    time.Time  `json:"not_after"`
	IssuedAt    time.Time  `json:"issued_at"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// ParseDeviceCert reads the validity of a PEM certificate into a DeviceCert
// for a device, with the serial the PKI named it by.
func ParseDeviceCert(serial, certPEM string) (DeviceCert, error) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return DeviceCert{}, Errorf(EINVALID, "certificate %s is not a PEM CERTIFICATE", serial)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return DeviceCert{}, Errorf(EINVALID, "certificate %s does not parse: %v", serial, err)
	}
	return DeviceCert{Serial: serial, NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC()}, nil
}
