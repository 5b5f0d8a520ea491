package simulate_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"gatehouse/contract"
	"gatehouse/simulate"
)

// checkedMenderServer is a MenderServer behind the official deviceauth
// device and management specs, so every request a test client sends is
// checked; Cleanup fails the test if the specs rejected any.
func checkedMenderServer(t *testing.T) *simulate.MenderServer {
	t.Helper()
	docs, err := contract.LoadOpenAPI3(context.Background(),
		"mender/deviceauth/devices_v1.yaml",
		"mender/deviceauth/management_v2.yaml",
	)
	if errors.Is(err, contract.ErrNoSpecs) {
		t.Skip("skipping: the Mender OpenAPI documents are not beside this checkout: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	checker, err := contract.NewChecker(docs...)
	if err != nil {
		t.Fatal(err)
	}
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT, Wrap: checker.Wrap})
	t.Cleanup(func() {
		if n, problems := checker.Result(); len(problems) > 0 || n == 0 {
			t.Errorf("the Mender specs rejected requests: %s", checker.Summary())
		}
	})
	return s
}

func startClient(t *testing.T, s *simulate.MenderServer, kind, mac string) (*simulate.MenderClient, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := simulate.NewMenderClient(simulate.MenderClientOptions{
		ServerURL:     s.URL,
		Key:           deviceKey(t, kind),
		Identity:      map[string]string{"mac": mac},
		RetryInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return c, ctx
}

// TestMenderClientPendingThenAccepted is the order on a real gateway
// (fact sheet §0): the client asks at boot, is refused while the device is
// pending, and gets its JWT on the first attempt after an operator
// accepts the auth set.
func TestMenderClientPendingThenAccepted(t *testing.T) {
	for _, kind := range keyKinds {
		t.Run(kind, func(t *testing.T) {
			s := checkedMenderServer(t)
			c, ctx := startClient(t, s, kind, "02:00:00:00:00:01")
			if err := c.WaitAttempts(ctx, 2); err != nil {
				t.Fatal(err)
			}
			if c.LastStatus() != http.StatusUnauthorized || c.Token() != "" {
				t.Fatalf("pending: last status %d, token %q; want 401 and none", c.LastStatus(), c.Token())
			}
			devs := s.State.Devices()
			if len(devs) != 1 || devs[0].Status != "pending" || len(devs[0].AuthSets) != 1 {
				t.Fatalf("devices = %+v, want one pending device with one auth set", devs)
			}
			select {
			case <-c.Accepted():
				t.Fatal("accepted before anyone accepted it")
			default:
			}
			d := devs[0]
			if err := s.State.SetAuthSetStatus(ctx, d.ID, d.AuthSets[0].ID, "accepted"); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitAccepted(ctx); err != nil {
				t.Fatal(err)
			}
			if !s.State.ValidDeviceToken(d.ID, c.Token()) || s.State.Status(d.ID) != "accepted" {
				t.Errorf("token valid %v, device %q; want a valid token of an accepted device",
					s.State.ValidDeviceToken(d.ID, c.Token()), s.State.Status(d.ID))
			}
			if n := c.Attempts(); n < 3 {
				t.Errorf("%d attempts, want at least two refused and one accepted", n)
			}
		})
	}
}

// TestMenderClientPreauthorizedFirst: the device was preauthorized with
// its identity and key before it booted; its first request is answered
// with a JWT (fact sheet §0; devauth.go processPreAuthRequest).
func TestMenderClientPreauthorizedFirst(t *testing.T) {
	s := checkedMenderServer(t)
	k := deviceKey(t, "ed25519")
	dev, err := s.State.Preauthorize(context.Background(), map[string]string{"mac": "02:00:00:00:00:01"}, signerPEM(t, k), false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := simulate.NewMenderClient(simulate.MenderClientOptions{ServerURL: s.URL, Key: k, Identity: map[string]string{"mac": "02:00:00:00:00:01"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Attempts() != 1 || !s.State.ValidDeviceToken(dev.ID, c.Token()) || s.State.Status(dev.ID) != "accepted" {
		t.Errorf("%d attempts, device %q; want one attempt, a valid token, an accepted device", c.Attempts(), s.State.Status(dev.ID))
	}
}

// TestMenderClientRetriesFailures: 5xx answers and refusals alike make
// the client wait and try again.
func TestMenderClientRetriesFailures(t *testing.T) {
	s := checkedMenderServer(t)
	s.Faults.FailNext(2, http.StatusServiceUnavailable, 0)
	c, ctx := startClient(t, s, "ecdsa", "02:00:00:00:00:01")
	if err := c.WaitAttempts(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if s.State.Len() != 1 || c.LastStatus() != http.StatusUnauthorized {
		t.Errorf("%d devices, last status %d; want the third attempt to reach deviceauth", s.State.Len(), c.LastStatus())
	}
}

func TestMenderClientStopsWithContext(t *testing.T) {
	s := newMenderServer(t, simulate.MenderServerOptions{Token: menderPAT})
	ctx, cancel := context.WithCancel(context.Background())
	c, err := simulate.NewMenderClient(simulate.MenderClientOptions{ServerURL: s.URL, Key: deviceKey(t, "ed25519"), Identity: map[string]string{"mac": "x"}, RetryInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	if err := c.WaitAttempts(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if err := c.WaitAccepted(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitAccepted = %v, want context.Canceled", err)
	}
}

func TestMenderClientOptions(t *testing.T) {
	k := deviceKey(t, "ed25519")
	for name, opts := range map[string]simulate.MenderClientOptions{
		"NoURL":      {Key: k, Identity: map[string]string{"mac": "x"}},
		"NoKey":      {ServerURL: "http://127.0.0.1:1", Identity: map[string]string{"mac": "x"}},
		"NoIdentity": {ServerURL: "http://127.0.0.1:1", Key: k},
	} {
		if _, err := simulate.NewMenderClient(opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
