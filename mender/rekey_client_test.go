package mender

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"gatehouse"
)

func TestDeleteAuthSetSent(t *testing.T) {
	rec := &recorder{}
	c := fake(t, rec.handler(status(http.StatusNoContent)))
	if err := c.DeleteAuthSet(context.Background(), "d/1", "a 1"); err != nil {
		t.Fatal(err)
	}
	want := []recorded{{"DELETE", devicesPath + "/d%2F1/auth/a%201", ""}}
	if got := rec.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	if err := c.DeleteAuthSet(context.Background(), "d1", ""); err == nil {
		t.Error("an empty auth set id was sent")
	}
}

// TestDeleteAuthSetAgainstDeviceauth runs the call against the simulated
// server as deviceauth answers it (devauth.go DeleteAuthSet): removing an
// accepted set keeps the device and ends the gateway's token, removing a
// preauthorized one removes the device, and a second removal is a 404.
func TestDeleteAuthSetAgainstDeviceauth(t *testing.T) {
	ctx := context.Background()
	c, s := simClient(t)
	k, pub := deviceKey(t)
	identity := map[string]string{"mac": "02:00:00:00:00:09"}
	gw := bootGateway(t, s, k, identity)
	dev, err := c.Preauthorize(ctx, identity, pub, true)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := gw.WaitAccepted(wctx); err != nil {
		t.Fatal(err)
	}
	_, other := deviceKey(t)
	if dev, err = c.Preauthorize(ctx, identity, other, true); err != nil || len(dev.AuthSets) != 2 {
		t.Fatalf("forcing a second key = %+v, %v", dev, err)
	}
	accepted, pre := dev.AuthSets[0], dev.AuthSets[1]
	if accepted.Status != gatehouse.MenderAccepted || pre.Status != gatehouse.MenderPreauthorized {
		t.Fatalf("auth sets = %+v", dev.AuthSets)
	}
	if err := c.DeleteAuthSet(ctx, dev.ID, accepted.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetDevice(ctx, dev.ID); err != nil || len(got.AuthSets) != 1 || got.AuthSets[0].ID != pre.ID {
		t.Fatalf("after removing the accepted set: %+v, %v", got, err)
	}
	if s.State.ValidDeviceToken(dev.ID, gw.Token()) {
		t.Error("the removed set's token is still valid")
	}
	if err := c.DeleteAuthSet(ctx, dev.ID, accepted.ID); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("second removal: %v, want not found", err)
	}
	if err := c.DeleteAuthSet(ctx, dev.ID, pre.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetDevice(ctx, dev.ID); !errors.Is(err, gatehouse.ErrBackendNotFound) {
		t.Errorf("the device outlived its preauthorized set: %v", err)
	}
}
