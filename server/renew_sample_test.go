package server

import (
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

func sampleCert() gatehouse.DeviceCert {
	now := time.Now().UTC()
	return gatehouse.DeviceCert{Serial: "aa:bb", DeviceID: "x57caa5lsobd", Fingerprint: "ab", Origin: gatehouse.CertFromRenewal,
		NotBefore: now, NotAfter: now.Add(time.Hour), IssuedAt: now, RevokedAt: &now}
}

func sampleRenewal() *protocol.Renewal {
	return &protocol.Renewal{Name: "gw-01", Serial: "aa:bb", Replaces: "aa:aa", NotAfter: time.Now(), Certificate: "PEM", CAChain: "PEM",
		Sealed: map[string][]byte{protocol.FieldPrivateKey: {1, 2}}}
}
