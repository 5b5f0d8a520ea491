package mender

import (
	"context"
	"errors"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/contract"
	"gatehouse/simulate"
)

// TestContract runs every client method, in both login modes, through
// Mender's official OpenAPI documents and fails on any request they reject.
func TestContract(t *testing.T) {
	docs, err := contract.LoadOpenAPI3(context.Background(),
		"mender/deviceauth/management_v2.yaml",
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
		exercise(t, c, s.State)
	}
	t.Log(checker.Summary())
	if n, problems := checker.Result(); len(problems) > 0 || n == 0 {
		t.Errorf("the Mender specs rejected requests: %s", checker.Summary())
	}
}

// exercise calls every method, the 409 and 404 paths included.
func exercise(t *testing.T, c *Client, state *simulate.Mender) {
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
	state.IndexNow()
	// The lookup behind a 409 whose body is unusable.
	if d, err := c.findByIdentity(ctx, identity); err != nil || d.ID != dev.ID {
		t.Errorf("findByIdentity = %+v, %v; want %s", d, err, dev.ID)
	}
	if err := c.SetTag(ctx, dev.ID, "name", "gw-01"); err != nil {
		t.Error(err)
	}
	if ids, err := c.FindByTag(ctx, "name", "gw-01"); err != nil || len(ids) != 1 {
		t.Errorf("FindByTag = %v, %v; want one id", ids, err)
	}
	if err := c.Decommission(ctx, dev.ID); err != nil {
		t.Error(err)
	}
	if err := c.Decommission(ctx, dev.ID); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("second Decommission = %v, want ErrBackendNotFound", err)
	}
}
