package simulate_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"testing"

	"gatehouse"
	"gatehouse/simulate"
)

// publicKeyPEM returns the PKIX PEM of a new key of the given kind.
func publicKeyPEM(t testing.TB, kind string) string {
	t.Helper()
	var pub crypto.PublicKey
	switch kind {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		pub = &k.PublicKey
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub = &k.PublicKey
	case "ed25519":
		p, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub = p
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func symmetricKey(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func enrollment(t testing.TB, id string) gatehouse.Enrollment {
	t.Helper()
	return gatehouse.Enrollment{
		RegistrationID: id,
		DeviceID:       id,
		IoTEdge:        true,
		PrimaryKey:     symmetricKey(t, 32),
		SecondaryKey:   symmetricKey(t, 32),
	}
}

// newPKI returns a PKI with the role gatehouse recommends, which issues and
// signs gateway names; NewPKI alone has OpenBao's defaults, which do not.
func newPKI(t testing.TB) *simulate.PKI {
	t.Helper()
	p, err := simulate.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetRole(simulate.RecommendedVaultRole()); err != nil {
		t.Fatal(err)
	}
	return p
}

// backend drives one simulator through the same fault tests: call makes the
// i-th distinct state-changing call, size reports how much state there is.
type backend struct {
	name    string
	service string // error prefix
	faults  *simulate.Faults
	call    func(ctx context.Context, i int) error
	size    func() int
}

func backends(t *testing.T) []backend {
	m := simulate.NewMender()
	d := simulate.NewDPS("")
	p := newPKI(t)
	key := publicKeyPEM(t, "ed25519")
	return []backend{
		{
			name: "Mender", service: "mender: ", faults: &m.Faults, size: m.Len,
			call: func(ctx context.Context, i int) error {
				_, err := m.Preauthorize(ctx, map[string]string{"mac": fmt.Sprintf("02:00:00:00:00:%02x", i)}, key, false)
				return err
			},
		},
		{
			name: "DPS", service: "dps: ", faults: &d.Faults, size: d.Len,
			call: func(ctx context.Context, i int) error {
				_, err := d.CreateEnrollment(ctx, enrollment(t, fmt.Sprintf("gw-%d", i)))
				return err
			},
		},
		{
			name: "PKI", service: "vault: ", faults: &p.Faults, size: p.Len,
			call: func(ctx context.Context, i int) error {
				_, err := p.Issue(ctx, fmt.Sprintf("gw-%d", i))
				return err
			},
		},
	}
}
