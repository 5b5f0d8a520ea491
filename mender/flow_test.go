package mender

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/rest"
	"gatehouse/simulate"
)

func deviceKey(t *testing.T) (crypto.Signer, string) {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// bootGateway runs a simulated Mender client for identity with key k, as
// on a real gateway, and waits for its first, refused, request.
func bootGateway(t *testing.T, s *simulate.MenderServer, k crypto.Signer, identity map[string]string) *simulate.MenderClient {
	t.Helper()
	gw, err := simulate.NewMenderClient(simulate.MenderClientOptions{ServerURL: s.URL, Key: k, Identity: identity, RetryInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runGateway(t, gw)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gw.WaitAttempts(ctx, 1); err != nil {
		t.Fatal(err)
	}
	return gw
}

// runGateway runs gw until the test ends; the returned func stops it
// earlier, as a power cut would.
func runGateway(t *testing.T, gw *simulate.MenderClient) (stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	done := make(chan error, 1)
	go func() { done <- gw.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestAcceptPendingGateway is the order of events on a real gateway (fact
// sheet §0): the gateway's Mender client asked first, so preauthorize
// meets a 409; the device is read, the auth set holding our key accepted,
// and the client's next request gets its JWT.
func TestAcceptPendingGateway(t *testing.T) {
	ctx := context.Background()
	c, s := simClient(t)
	k, pub := deviceKey(t)
	identity := map[string]string{"mac": "02:00:00:00:00:01"}
	gw := bootGateway(t, s, k, identity)

	dev, err := c.Preauthorize(ctx, identity, pub, false)
	if !errors.Is(err, gatehouse.ErrBackendExists) || dev.AuthSets != nil {
		t.Fatalf("Preauthorize = %+v, %v; want the 409 device without auth sets", dev, err)
	}
	dev, err = c.GetDevice(ctx, dev.ID)
	if err != nil || dev.Status != "pending" || len(dev.AuthSets) != 1 || dev.AuthSets[0].PublicKey != pub {
		t.Fatalf("GetDevice = %+v, %v; want the pending device holding our key", dev, err)
	}
	if err := c.SetAuthSetStatus(ctx, dev.ID, dev.AuthSets[0].ID, "accepted"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := gw.WaitAccepted(wctx); err != nil {
		t.Fatal(err)
	}
	if !s.State.ValidDeviceToken(dev.ID, gw.Token()) {
		t.Error("the gateway's JWT is not valid for its device")
	}
}

// TestPreauthorizeForcePendingKey: forcing the key a pending device
// already presented turns that very auth set preauthorized (store
// UpsertAuthSetStatus), the client reports the existing device, and the
// gateway's next request is accepted without an operator.
func TestPreauthorizeForcePendingKey(t *testing.T) {
	ctx := context.Background()
	c, s := simClient(t)
	k, pub := deviceKey(t)
	identity := map[string]string{"mac": "02:00:00:00:00:01"}
	gw, err := simulate.NewMenderClient(simulate.MenderClientOptions{ServerURL: s.URL, Key: k, Identity: identity, RetryInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// One refused attempt, then the gateway is off while we force its key,
	// so it cannot be accepted before we look.
	stop := runGateway(t, gw)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := gw.WaitAttempts(wctx, 1); err != nil {
		t.Fatal(err)
	}
	stop()
	pending := s.State.Devices()[0]

	dev, err := c.Preauthorize(ctx, identity, pub, true)
	if err != nil {
		t.Fatal(err)
	}
	if dev.ID != pending.ID || len(dev.AuthSets) != 1 || dev.AuthSets[0].ID != pending.AuthSets[0].ID || dev.AuthSets[0].Status != "preauthorized" {
		t.Fatalf("Preauthorize(force) = %+v, want device %s with its set preauthorized", dev, pending.ID)
	}
	runGateway(t, gw)
	if err := gw.WaitAccepted(wctx); err != nil {
		t.Fatal(err)
	}
	if s.State.Status(dev.ID) != "accepted" {
		t.Errorf("device %q, want accepted", s.State.Status(dev.ID))
	}
}

func TestSetAuthSetStatusRefused(t *testing.T) {
	ctx := context.Background()
	c, s := simClient(t)
	dev, err := c.Preauthorize(ctx, map[string]string{"mac": "02:00:00:00:00:01"}, keyPEM(t), false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetDevice(ctx, dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	aid := got.AuthSets[0].ID
	// AcceptDeviceAuth takes only pending or rejected sets; statusValidate
	// refuses preauthorized as a target.
	for _, status := range []string{"accepted", "preauthorized"} {
		if err := c.SetAuthSetStatus(ctx, dev.ID, aid, status); rest.StatusOf(err) != http.StatusBadRequest {
			t.Errorf("%s on a preauthorized set: %v, want a 400", status, err)
		}
	}
	err = c.SetAuthSetStatus(ctx, dev.ID, "no-such-set", "accepted")
	if !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("unknown set: %v, want ErrBackendNotFound", err)
	}
	if s.State.Status(dev.ID) != "preauthorized" {
		t.Errorf("device %q after refused calls", s.State.Status(dev.ID))
	}
}
