package provision

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"

	"gatehouse"
	"gatehouse/protocol"
)

// menderStep preauthorizes the device's identity and key, then tags it with
// its name. A 409 whose device holds our key is our own earlier attempt.
func menderStep(ctx context.Context, m gatehouse.Mender, in *stepInput) (*stepResult, error) {
	identity := map[string]string{"mac": in.Device.MAC}
	pemKey := protocol.PublicKeyPEM(in.Key.PublicKey)
	dev, err := m.Preauthorize(ctx, identity, pemKey, false)
	if errors.Is(err, gatehouse.ErrBackendExists) {
		if dev, err = m.GetDevice(ctx, dev.ID); err != nil {
			return nil, err
		}
		var keys []string
		for _, a := range dev.AuthSets {
			keys = append(keys, a.PublicKey)
		}
		if !holdsKey(keys, in.Key.PublicKey) {
			return nil, fmt.Errorf("mender: a device with mac %s already exists with a different key", in.Device.MAC)
		}
	} else if err != nil {
		return nil, err
	}
	if err := m.SetTag(ctx, dev.ID, "name", in.Device.Name); err != nil {
		return nil, err
	}
	return &stepResult{Output: map[string]string{outMenderID: dev.ID}}, nil
}

func holdsKey(pems []string, spki []byte) bool {
	for _, p := range pems {
		b, _ := pem.Decode([]byte(p))
		if b == nil {
			continue
		}
		if pub, err := x509.ParsePKIXPublicKey(b.Bytes); err == nil {
			if der, err := x509.MarshalPKIXPublicKey(pub); err == nil && string(der) == string(spki) {
				return true
			}
		}
	}
	return false
}

// dpsStep creates the device's individual enrollment, or adopts the one an
// earlier attempt created, so the keys never change under the device.
func dpsStep(ctx context.Context, dps gatehouse.DPS, in *stepInput) (*stepResult, error) {
	name := in.Device.Name
	e, err := dps.GetEnrollment(ctx, name)
	if errors.Is(err, gatehouse.ErrBackendNotFound) {
		e, err = createEnrollment(ctx, dps, name)
	}
	if err != nil {
		return nil, err
	}
	sealed, err := protocol.Seal(in.SealKey, protocol.FieldDPSPrimaryKey, []byte(e.PrimaryKey))
	if err != nil {
		return nil, fmt.Errorf("dps: seal key for device: %w", err)
	}
	return &stepResult{
		Output: map[string]string{outDPSIDScope: dps.IDScope(), outDPSRegistrationID: e.RegistrationID},
		Sealed: map[string][]byte{protocol.FieldDPSPrimaryKey: sealed},
	}, nil
}

func createEnrollment(ctx context.Context, dps gatehouse.DPS, name string) (gatehouse.Enrollment, error) {
	e := gatehouse.Enrollment{RegistrationID: name, DeviceID: name, IoTEdge: true,
		PrimaryKey: newSymmetricKey(), SecondaryKey: newSymmetricKey()}
	created, err := dps.CreateEnrollment(ctx, e)
	if errors.Is(err, gatehouse.ErrBackendExists) {
		// Lost a race with ourselves: take the enrollment that won.
		return dps.GetEnrollment(ctx, name)
	}
	return created, err
}

// newSymmetricKey is a DPS symmetric key: base64 of 32 random bytes.
func newSymmetricKey() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// vaultStep gets the device certificate: signed for the agent's own key in
// sign mode, else issued with a new key that is sealed to the device at once
// and never stored in clear.
func vaultStep(ctx context.Context, pki gatehouse.PKI, sign bool, in *stepInput) (*stepResult, error) {
	c, err := certificate(ctx, pki, sign, in)
	if err != nil {
		return nil, err
	}
	res := &stepResult{Output: map[string]string{outCertificate: c.CertificatePEM, outCAChain: c.CAChainPEM, outSerial: c.Serial}}
	if c.PrivateKeyPEM == "" {
		return res, nil
	}
	sealed, err := protocol.Seal(in.SealKey, protocol.FieldPrivateKey, []byte(c.PrivateKeyPEM))
	if err != nil {
		return nil, fmt.Errorf("vault: seal key for device: %w", err)
	}
	res.Sealed = map[string][]byte{protocol.FieldPrivateKey: sealed}
	return res, nil
}

func certificate(ctx context.Context, pki gatehouse.PKI, sign bool, in *stepInput) (gatehouse.Certificate, error) {
	if !sign {
		return pki.Issue(ctx, in.Device.Name)
	}
	if in.Key.CSR == "" {
		return gatehouse.Certificate{}, errors.New("vault: sign mode needs the agent's CSR, and this gateway's agent sent none; upgrade gatehouse-agent")
	}
	return pki.Sign(ctx, in.Device.Name, in.Key.CSR)
}
