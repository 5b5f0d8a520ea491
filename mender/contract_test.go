package mender

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/contract"
	"gatehouse/rest"
	"gatehouse/simulate"
)

// TestContract runs every client method, in both login modes, and a
// simulated gateway's auth requests through Mender's official OpenAPI
// documents and fails on any request they reject.
func TestContract(t *testing.T) {
	docs, err := contract.LoadOpenAPI3(context.Background(),
		"mender/deviceauth/management_v2.yaml",
		"mender/deviceauth/devices_v1.yaml",
		"mender/inventory/management_v1.yaml",
		"mender/inventory/management_v2.yaml",
		"mender/useradm/management_v1.yaml",
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
	s, err := simulate.NewMenderServer(simulate.MenderServerOptions{
		Token: "pat", User: "ops@example.com", Password: "pw", Wrap: checker.Wrap,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, cfg := range []Config{
		{URL: s.URL, Token: "pat"},
		{URL: s.URL, User: "ops@example.com", Password: "pw"},
	} {
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		exercise(t, c, s)
	}
	t.Log(checker.Summary())
	if n, problems := checker.Result(); len(problems) > 0 || n == 0 {
		t.Errorf("the Mender specs rejected requests: %s", checker.Summary())
	}
}

// exercise calls every method, the 409 and 404 paths included.
func exercise(t *testing.T, c *Client, s *simulate.MenderServer) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	identity := map[string]string{"mac": "02:00:00:00:00:01", "sn": time.Now().Format(time.RFC3339Nano)}
	dev, err := c.Preauthorize(ctx, identity, keyPEM(t), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Preauthorize(ctx, identity, keyPEM(t), false); !errors.Is(err, gatehouse.ErrBackendExists) {
		t.Errorf("duplicate Preauthorize = %v, want ErrBackendExists", err)
	}
	if _, err := c.GetDevice(ctx, dev.ID); err != nil {
		t.Error(err)
	}
	if _, err := c.GetDevice(ctx, "no-such-device"); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("GetDevice(unknown) = %v, want ErrBackendNotFound", err)
	}
	// Tags before and after inventory holds the device.
	if err := c.SetTag(ctx, dev.ID, "name", "gw-01"); err != nil {
		t.Error(err)
	}
	if _, err := c.Tags(ctx, dev.ID); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("Tags before inventory = %v, want ErrBackendNotFound", err)
	}
	s.State.IndexNow()
	// The lookup behind a 409 whose body is unusable.
	if d, err := c.findByIdentity(ctx, identity); err != nil || d.ID != dev.ID {
		t.Errorf("findByIdentity = %+v, %v; want %s", d, err, dev.ID)
	}
	if err := c.SetTag(ctx, dev.ID, "name", "gw-01"); err != nil {
		t.Error(err)
	}
	if tags, err := c.Tags(ctx, dev.ID); err != nil || tags["name"] != "gw-01" {
		t.Errorf("Tags = %v, %v; want name=gw-01", tags, err)
	}
	if ids, err := c.FindByTag(ctx, "name", "gw-01"); err != nil || len(ids) != 1 {
		t.Errorf("FindByTag = %v, %v; want one id", ids, err)
	}
	exerciseGateway(t, ctx, c, s, identity)
	if err := c.Decommission(ctx, dev.ID); err != nil {
		t.Error(err)
	}
	if err := c.Decommission(ctx, dev.ID); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("second Decommission = %v, want ErrBackendNotFound", err)
	}
}

// exerciseGateway boots a gateway with a new key for the identity, forces
// the key on and accepts the gateway's set, so the device API, the forced
// preauthorize and the status change go through the specs too.
func exerciseGateway(t *testing.T, ctx context.Context, c *Client, s *simulate.MenderServer, identity map[string]string) {
	k, pub := deviceKey(t)
	gw := bootGateway(t, s, k, identity)
	dev, err := c.Preauthorize(ctx, identity, pub, true)
	if err != nil {
		t.Fatal(err)
	}
	// The set preauthorized first, whose key no gateway presents, stays
	// preauthorized; the gateway's own set may be accepted any moment.
	for _, a := range dev.AuthSets {
		if a.PublicKey != pub {
			if err := c.SetAuthSetStatus(ctx, dev.ID, a.ID, "rejected"); rest.StatusOf(err) != http.StatusBadRequest {
				t.Errorf("rejecting a preauthorized set = %v, want a 400", err)
			}
		}
	}
	if err := gw.WaitAccepted(ctx); err != nil {
		t.Fatal(err)
	}
	dev, err = c.GetDevice(ctx, dev.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range dev.AuthSets {
		if a.PublicKey == pub {
			if err := c.SetAuthSetStatus(ctx, dev.ID, a.ID, "rejected"); err != nil {
				t.Error(err)
			}
			if err := c.SetAuthSetStatus(ctx, dev.ID, a.ID, "accepted"); err != nil {
				t.Error(err)
			}
		}
	}
}
