package mender

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/rest"
	"gatehouse/simulate"
)

const (
	testPAT      = "pat-0123456789abcdef"
	testUser     = "ops@example.com"
	testPassword = "correct horse battery staple"
)

func keyPEM(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func newSim(t *testing.T, opts simulate.MenderServerOptions) *simulate.MenderServer {
	t.Helper()
	s, err := simulate.NewMenderServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newClient builds a client whose retries wait milliseconds, not seconds;
// Retry-After still sets the floor.
func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.rest.MinBackoff, c.rest.MaxBackoff = time.Millisecond, 20*time.Millisecond
	return c
}

func simClient(t *testing.T) (*Client, *simulate.MenderServer) {
	s := newSim(t, simulate.MenderServerOptions{Token: testPAT})
	return newClient(t, Config{URL: s.URL, Token: testPAT, Timeout: 5 * time.Second}), s
}

// noSecrets fails if err gives away a credential.
func noSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(secrets, testPAT, testPassword) {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains a secret", err)
		}
	}
}

func TestPreauthorize(t *testing.T) {
	ctx := context.Background()
	c, s := simClient(t)
	identity := map[string]string{"mac": "02:12:61:13:6c:42"}
	key := keyPEM(t)
	dev, err := c.Preauthorize(ctx, identity, key, false)
	if err != nil {
		t.Fatal(err)
	}
	if want, ok := s.State.Device(dev.ID); !ok || !reflect.DeepEqual(want.IdentityData, identity) {
		t.Fatalf("id %q is not the simulator's device for %v", dev.ID, identity)
	}
	got, err := c.GetDevice(ctx, dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := gatehouse.MenderDevice{ID: dev.ID, IdentityData: identity, Status: "preauthorized"}
	sets := got.AuthSets
	got.AuthSets = nil
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(dev, want) || len(sets) != 1 || sets[0].Status != "preauthorized" {
		t.Errorf("Preauthorize = %+v\nGetDevice = %+v\nwant %+v", dev, got, want)
	}
}

func TestPreauthorizeDuplicate(t *testing.T) {
	ctx := context.Background()
	c, s := simClient(t)
	identity := map[string]string{"mac": "02:00:00:00:00:01"}
	first, err := c.Preauthorize(ctx, identity, keyPEM(t), false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Preauthorize(ctx, identity, keyPEM(t), false)
	if !errors.Is(err, gatehouse.ErrBackendExists) || rest.StatusOf(err) != http.StatusConflict {
		t.Fatalf("err = %v, want a 409 wrapping ErrBackendExists", err)
	}
	if !strings.HasPrefix(err.Error(), "mender: ") {
		t.Errorf("err = %q, want the mender: prefix", err)
	}
	if got.ID != first.ID || got.AuthSets != nil || got.Status != "preauthorized" {
		t.Errorf("conflict returned %+v, want the existing device %+v", got, first)
	}
	if s.State.Len() != 1 {
		t.Errorf("%d devices after a conflict, want 1", s.State.Len())
	}
}

func TestSetTagAndFindByTag(t *testing.T) {
	ctx := context.Background()
	c, s := simClient(t)
	dev, err := c.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, keyPEM(t), false)
	if err != nil {
		t.Fatal(err)
	}
	// Before Mender's workflows have filled inventory in, a tag write
	// answers 200 and stores nothing; only reading it back tells.
	if err := c.SetTag(ctx, dev.ID, "name", "gw-00"); err != nil {
		t.Fatal(err)
	}
	if tags, err := c.Tags(ctx, dev.ID); !errors.Is(err, gatehouse.ErrBackendNotFound) || rest.StatusOf(err) != http.StatusNotFound {
		t.Errorf("Tags before inventory holds the device = %v, %v; want a 404 wrapping ErrBackendNotFound", tags, err)
	}
	s.State.IndexNow()
	for _, v := range []string{"gw-00", "gw-01"} { // the second overwrites
		if err := c.SetTag(ctx, dev.ID, "name", v); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := c.Tags(ctx, dev.ID); err != nil || !reflect.DeepEqual(got, map[string]string{"name": "gw-01"}) {
		t.Errorf("Tags = %v, %v; want name=gw-01", got, err)
	}
	if ids, err := c.FindByTag(ctx, "name", "gw-01"); err != nil || !slices.Equal(ids, []string{dev.ID}) {
		t.Errorf("FindByTag = %v, %v; want [%s]", ids, err, dev.ID)
	}
	if ids, err := c.FindByTag(ctx, "name", "gw-00"); err != nil || len(ids) != 0 {
		t.Errorf("FindByTag(old value) = %v, %v; want none", ids, err)
	}
	if err := c.SetTag(ctx, "no-such-device", "name", "x"); err != nil {
		t.Errorf("SetTag(unknown) = %v, want Mender's 200 that stores nothing", err)
	}
}

func TestFindByTagPages(t *testing.T) {
	ctx := context.Background()
	c, s := simClient(t)
	key := keyPEM(t)
	var want []string
	for i := range searchPageSize + 50 {
		dev, err := s.State.Preauthorize(ctx, map[string]string{"mac": fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256)}, key, false)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, dev.ID)
	}
	s.State.IndexNow()
	for _, id := range want {
		s.State.SetTag(ctx, id, "site", "north")
	}
	ids, err := c.FindByTag(ctx, "site", "north")
	if err != nil || !slices.Equal(ids, want) {
		t.Errorf("FindByTag found %d devices (err %v), want all %d in order", len(ids), err, len(want))
	}
}

func TestDecommission(t *testing.T) {
	ctx := context.Background()
	c, s := simClient(t)
	dev, err := c.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, keyPEM(t), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Decommission(ctx, dev.ID); err != nil {
		t.Fatal(err)
	}
	if s.State.Len() != 0 {
		t.Errorf("device still there after Decommission")
	}
	if _, err := c.GetDevice(ctx, dev.ID); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("GetDevice after Decommission = %v, want ErrBackendNotFound", err)
	}
	err = c.Decommission(ctx, dev.ID)
	if !errors.Is(err, gatehouse.ErrBackendNotFound) || rest.StatusOf(err) != http.StatusNotFound {
		t.Errorf("second Decommission = %v, want a 404 wrapping ErrBackendNotFound", err)
	}
	if err := c.Decommission(ctx, ""); err == nil {
		t.Error("Decommission(\"\") succeeded")
	}
}

func TestLoginRefreshes(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, simulate.MenderServerOptions{User: testUser, Password: testPassword, JWTTTL: 2 * time.Second})
	c := newClient(t, Config{URL: s.URL, User: testUser, Password: testPassword, Timeout: 5 * time.Second})
	for range 3 {
		if err := c.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if s.Logins() != 1 {
		t.Fatalf("Logins() = %d after three calls, want 1 (the JWT is reused)", s.Logins())
	}

	// Past the JWT's exp the client logs in again before calling.
	time.Sleep(2100 * time.Millisecond)
	before := s.Faults.Requests()
	if _, err := c.FindByTag(ctx, "name", "gw-01"); err != nil {
		t.Fatal(err)
	}
	if s.Logins() != 2 || s.Faults.Requests()-before != 2 {
		t.Errorf("after exp: %d logins, %d requests; want 2 logins and login+search without a 401",
			s.Logins(), s.Faults.Requests()-before)
	}

	// A JWT the server stops accepting early is replaced on its 401.
	s.ExpireSessions()
	if _, err := c.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, keyPEM(t), false); err != nil {
		t.Fatal(err)
	}
	if s.Logins() != 3 || s.State.Len() != 1 {
		t.Errorf("after a 401: %d logins, %d devices; want 3 and 1", s.Logins(), s.State.Len())
	}
}

func TestWrongCredentials(t *testing.T) {
	ctx := context.Background()
	s := newSim(t, simulate.MenderServerOptions{Token: "the-real-token", User: testUser, Password: "the-real-password"})
	tests := map[string]Config{
		"Token":    {URL: s.URL, Token: testPAT},
		"Password": {URL: s.URL, User: testUser, Password: testPassword},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			err := newClient(t, cfg).Check(ctx)
			if rest.StatusOf(err) != http.StatusUnauthorized {
				t.Fatalf("err = %v, want a 401", err)
			}
			if !strings.HasPrefix(err.Error(), "mender: ") || !strings.Contains(err.Error(), "401 Unauthorized") {
				t.Errorf("err = %q, want a clear mender 401", err)
			}
			noSecrets(t, err, "the-real-token", "the-real-password")
		})
	}
	if s.Logins() != 0 {
		t.Errorf("Logins() = %d, want 0", s.Logins())
	}
}
