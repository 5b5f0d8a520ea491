package simulate_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"gatehouse"
	"gatehouse/simulate"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestMenderPreauthorize(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"rsa", "ecdsa", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			m := simulate.NewMender()
			key := publicKeyPEM(t, kind)
			identity := map[string]string{"mac": "02:12:61:13:6c:42"}
			dev, err := m.Preauthorize(ctx, identity, key, false)
			if err != nil {
				t.Fatal(err)
			}
			if !uuidPattern.MatchString(dev.ID) {
				t.Errorf("device id %q is not a UUID", dev.ID)
			}
			if !reflect.DeepEqual(dev.IdentityData, identity) {
				t.Errorf("identity = %v, want %v", dev.IdentityData, identity)
			}
			if len(dev.AuthSets) != 1 || dev.AuthSets[0].PublicKey != key {
				t.Errorf("public keys = %q, want [%q]", dev.AuthSets, key)
			}
			if got := m.Status(dev.ID); got != simulate.StatusPreauthorized {
				t.Errorf("status = %q, want %q", got, simulate.StatusPreauthorized)
			}
			if got := m.Devices(); len(got) != 1 || !reflect.DeepEqual(got[0], dev) {
				t.Errorf("Devices() = %v, want [%v]", got, dev)
			}
		})
	}
}

func TestMenderPreauthorizeDuplicate(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	first, err := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01", "serial": "a"}, publicKeyPEM(t, "ed25519"), false)
	if err != nil {
		t.Fatal(err)
	}
	before := m.Devices()

	// Same identity (the map's order does not matter), different key.
	got, err := m.Preauthorize(ctx, map[string]string{"serial": "a", "mac": "02:00:00:00:00:01"}, publicKeyPEM(t, "ecdsa"), false)
	if !errors.Is(err, gatehouse.ErrBackendExists) {
		t.Fatalf("err = %v, want ErrBackendExists", err)
	}
	if !strings.HasPrefix(err.Error(), "mender: 409") {
		t.Errorf("err = %q, want a mender 409", err)
	}
	// deviceauth's 409 body is the device with "auth_sets": null.
	first.AuthSets = nil
	if !reflect.DeepEqual(got, first) {
		t.Errorf("conflict returned %v, want the existing device without auth sets %v", got, first)
	}
	if after := m.Devices(); !reflect.DeepEqual(after, before) || m.Len() != 1 {
		t.Errorf("state changed on conflict: %v, want %v", after, before)
	}
}

func TestMenderPreauthorizeRejects(t *testing.T) {
	good := publicKeyPEM(t, "ed25519")
	tests := map[string]struct {
		identity map[string]string
		key      string
	}{
		"Garbage":         {map[string]string{"mac": "x"}, "not a pem"},
		"PKCS1":           {map[string]string{"mac": "x"}, strings.ReplaceAll(publicKeyPEM(t, "rsa"), "PUBLIC KEY", "RSA PUBLIC KEY")},
		"PrivateKeyBlock": {map[string]string{"mac": "x"}, strings.ReplaceAll(good, "PUBLIC KEY", "PRIVATE KEY")},
		"BadDER":          {map[string]string{"mac": "x"}, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
		"X25519":          {map[string]string{"mac": "x"}, x25519PEM(t)},
		"NoIdentity":      {nil, good},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m := simulate.NewMender()
			_, err := m.Preauthorize(context.Background(), tt.identity, tt.key, false)
			if err == nil || !strings.HasPrefix(err.Error(), "mender: 400") {
				t.Fatalf("err = %v, want a mender 400", err)
			}
			if m.Len() != 0 {
				t.Errorf("Len() = %d after a rejected request, want 0", m.Len())
			}
		})
	}
}

// x25519PEM is a valid PKIX key that Mender does not accept for devices.
func x25519PEM(t *testing.T) string {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestMenderReturnsCopies(t *testing.T) {
	m := simulate.NewMender()
	dev, err := m.Preauthorize(context.Background(), map[string]string{"mac": "a"}, publicKeyPEM(t, "ed25519"), false)
	if err != nil {
		t.Fatal(err)
	}
	m.IndexNow()
	dev.IdentityData["mac"] = "changed"
	dev.AuthSets[0].PublicKey = "changed"
	m.TagsOf(dev.ID)["name"] = "changed"
	got := m.Devices()[0]
	if got.IdentityData["mac"] != "a" || got.AuthSets[0].PublicKey == "changed" || len(m.TagsOf(dev.ID)) != 0 {
		t.Errorf("caller's changes leaked into the simulator: %v, tags %v", got, m.TagsOf(dev.ID))
	}
}

func TestMenderSetTag(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	dev, err := m.Preauthorize(ctx, map[string]string{"mac": "a"}, publicKeyPEM(t, "ed25519"), false)
	if err != nil {
		t.Fatal(err)
	}
	m.IndexNow()
	if err := m.SetTag(ctx, dev.ID, "name", "gw-01"); err != nil {
		t.Fatal(err)
	}
	if err := m.SetTag(ctx, dev.ID, "name", "gw-02"); err != nil {
		t.Fatal(err)
	}
	if got, want := m.TagsOf(dev.ID), map[string]string{"name": "gw-02"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Tags() = %v, want %v", got, want)
	}
	if got, err := m.Tags(ctx, dev.ID); err != nil || !reflect.DeepEqual(got, map[string]string{"name": "gw-02"}) {
		t.Errorf("Tags() = %v, %v", got, err)
	}

	// Inventory answers 200 for a device it does not hold and stores
	// nothing (inventory.go UpsertAttributesWithUpdated: the tags upsert
	// matches no document, and that is no error).
	if err := m.SetTag(ctx, "no-such-device", "name", "gw-01"); err != nil {
		t.Errorf("unknown device: err = %v, want success that stores nothing", err)
	}
	_, err = m.Tags(ctx, "no-such-device")
	if !errors.Is(err, gatehouse.ErrBackendNotFound) || !strings.HasPrefix(err.Error(), "mender: 404") {
		t.Errorf("Tags of an unknown device: err = %v, want a mender 404 wrapping ErrBackendNotFound", err)
	}
	if err := m.SetTag(ctx, dev.ID, "", "x"); err == nil || !strings.HasPrefix(err.Error(), "mender: 400") {
		t.Errorf("empty tag name: err = %v, want a mender 400", err)
	}
	if m.TagsOf("no-such-device") != nil {
		t.Errorf("Tags of an unknown device should be nil")
	}
}

func TestMenderConcurrent(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	key := publicKeyPEM(t, "ed25519")
	const identities, perIdentity = 10, 8
	ids := make([][]string, identities)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range identities * perIdentity {
		wg.Go(func() {
			mac := fmt.Sprintf("02:00:00:00:00:%02x", i%identities)
			dev, err := m.Preauthorize(ctx, map[string]string{"mac": mac}, key, false)
			if err != nil && !errors.Is(err, gatehouse.ErrBackendExists) {
				t.Error(err)
				return
			}
			if err := m.SetTag(ctx, dev.ID, "name", mac); err != nil {
				t.Error(err)
			}
			_ = m.Devices()
			mu.Lock()
			ids[i%identities] = append(ids[i%identities], dev.ID)
			mu.Unlock()
		})
	}
	wg.Wait()
	if m.Len() != identities {
		t.Fatalf("Len() = %d, want %d", m.Len(), identities)
	}
	for i, got := range ids {
		for _, id := range got {
			if id != got[0] {
				t.Errorf("identity %d got device ids %v, want one id", i, got)
				break
			}
		}
	}
}

func TestMenderFindByTagAndDecommission(t *testing.T) {
	ctx := context.Background()
	m := simulate.NewMender()
	key := publicKeyPEM(t, "ed25519")
	var ids []string
	for i := range 3 {
		dev, err := m.Preauthorize(ctx, map[string]string{"mac": fmt.Sprintf("02:00:00:00:00:%02x", i)}, key, false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, dev.ID)
	}
	m.IndexNow()
	m.SetTag(ctx, ids[0], "name", "gw-01")
	m.SetTag(ctx, ids[2], "name", "gw-01")
	m.SetTag(ctx, ids[1], "name", "gw-02")
	if got, err := m.FindByTag(ctx, "name", "gw-01"); err != nil || !reflect.DeepEqual(got, []string{ids[0], ids[2]}) {
		t.Errorf("FindByTag = %v, %v; want %v", got, err, []string{ids[0], ids[2]})
	}
	// A retagged device is found by its new value only.
	m.SetTag(ctx, ids[1], "name", "gw-03")
	if got, _ := m.FindByTag(ctx, "name", "gw-02"); len(got) != 0 {
		t.Errorf("FindByTag of the old value = %v, want none", got)
	}
	if got, _ := m.FindByTag(ctx, "name", "gw-03"); !reflect.DeepEqual(got, []string{ids[1]}) {
		t.Errorf("FindByTag of the new value = %v, want [%s]", got, ids[1])
	}

	if err := m.Decommission(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.FindByTag(ctx, "name", "gw-01"); !reflect.DeepEqual(got, []string{ids[2]}) {
		t.Errorf("FindByTag after decommission = %v, want [%s]", got, ids[2])
	}
	if _, ok := m.Device(ids[0]); ok || m.Len() != 2 {
		t.Errorf("decommissioned device still there (Len %d)", m.Len())
	}
	err := m.Decommission(ctx, ids[0])
	if !errors.Is(err, gatehouse.ErrBackendNotFound) || !strings.HasPrefix(err.Error(), "mender: 404") {
		t.Errorf("second decommission: err = %v, want a mender 404 wrapping ErrBackendNotFound", err)
	}
	// The identity is free again, as once Mender's decommission workflow ends.
	if _, err := m.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:00"}, key, false); err != nil {
		t.Errorf("preauthorize a decommissioned identity: %v", err)
	}
}
