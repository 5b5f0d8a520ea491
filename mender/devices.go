package mender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"gatehouse"
	"gatehouse/rest"
)

const devicesPath = "/api/management/v2/devauth/devices"

// device is deviceauth's Device, as much of it as gatehouse reads.
type device struct {
	ID           string         `json:"id"`
	IdentityData map[string]any `json:"identity_data"`
	Status       string         `json:"status"`
	// AuthSets is null in a preauthorize 409: deviceauth hides them there.
	AuthSets []struct {
		ID     string `json:"id"`
		Pubkey string `json:"pubkey"`
		Status string `json:"status"`
	} `json:"auth_sets"`
	Decommissioning bool `json:"decommissioning"`
}

func (d device) public() gatehouse.MenderDevice {
	out := gatehouse.MenderDevice{ID: d.ID, IdentityData: d.identity(), Status: d.Status, Decommissioning: d.Decommissioning}
	if d.AuthSets != nil {
		out.AuthSets = []gatehouse.MenderAuthSet{}
	}
	for _, s := range d.AuthSets {
		out.AuthSets = append(out.AuthSets, gatehouse.MenderAuthSet{ID: s.ID, PublicKey: s.Pubkey, Status: s.Status})
	}
	return out
}

// identity flattens identity_data to strings; Mender allows any JSON value,
// and a non-string one is kept as its JSON text.
func (d device) identity() map[string]string {
	out := make(map[string]string, len(d.IdentityData))
	for k, v := range d.IdentityData {
		if s, ok := v.(string); ok {
			out[k] = s
			continue
		}
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	return out
}

func devicePath(id string) string { return devicesPath + "/" + url.PathEscape(id) }

// Preauthorize submits an identity and public key (PEM, PUBLIC KEY). A known
// identity answers 409 with the existing device (without its auth sets),
// returned with an error wrapping gatehouse.ErrBackendExists.
//
// With force, a known identity gets the key as a preauthorized auth set
// (an auth set that already holds the key turns preauthorized), and the
// device comes back with its auth sets. deviceauth's answer to a forced
// request for a known identity cannot say which device that is: its
// Location names an id the handler generated for the request and never
// stored (api_devauth.go PostDevicesV2Handler). So the client asks without
// force first, learns the device from the 409, forces, and reads the
// device back.
func (c *Client) Preauthorize(ctx context.Context, identity map[string]string, publicKeyPEM string, force bool) (gatehouse.MenderDevice, error) {
	dev, err := c.preauthorize(ctx, identity, publicKeyPEM, false)
	if !force || !errors.Is(err, gatehouse.ErrBackendExists) {
		return dev, err
	}
	if _, err := c.preauthorize(ctx, identity, publicKeyPEM, true); err != nil {
		return gatehouse.MenderDevice{}, fmt.Errorf("%w (forcing the key onto device %s)", err, dev.ID)
	}
	got, err := c.GetDevice(ctx, dev.ID)
	if err != nil {
		return gatehouse.MenderDevice{}, fmt.Errorf("mender: the key was forced onto device %s, but reading it back failed: %w", dev.ID, err)
	}
	return got, nil
}

// preauthorize sends one preauthorize request. Its 201 device is read from
// Location, which is right for a new device only.
func (c *Client) preauthorize(ctx context.Context, identity map[string]string, publicKeyPEM string, force bool) (gatehouse.MenderDevice, error) {
	body := map[string]any{"identity_data": identity, "pubkey": publicKeyPEM}
	if force {
		body["force"] = true
	}
	resp, err := c.do(ctx, rest.Request{
		Method: http.MethodPost,
		Path:   devicesPath,
		Body:   body,
		OK:     []int{http.StatusCreated, http.StatusConflict},
	})
	if err != nil {
		return gatehouse.MenderDevice{}, err
	}
	if resp.Status == http.StatusConflict {
		return c.conflict(ctx, identity, resp)
	}
	id, err := idFromLocation(resp.Header.Get("Location"))
	if err != nil {
		return gatehouse.MenderDevice{}, fmt.Errorf("mender: POST %s: 201 Created: %w", devicesPath, err)
	}
	return gatehouse.MenderDevice{
		ID:           id,
		IdentityData: maps.Clone(identity),
		Status:       gatehouse.MenderPreauthorized,
	}, nil
}

// idFromLocation reads the new device's id from Location. Mender sends the
// relative "devices/<id>"; an absolute URL or path is read the same way.
func idFromLocation(loc string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(loc))
	if loc == "" || err != nil {
		return "", errors.New("no usable Location header to read the device id from")
	}
	parent, id, _ := cutLast(strings.TrimSuffix(u.Path, "/"), "/")
	if id == "" || !strings.HasSuffix("/"+parent, "/devices") {
		return "", fmt.Errorf("the Location header %q does not name a device", loc)
	}
	return id, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return "", s, false
}

// conflict turns a 409 into the existing device and an ErrBackendExists.
// The body should be that device; if it is not, look it up.
func (c *Client) conflict(ctx context.Context, identity map[string]string, resp *rest.Response) (gatehouse.MenderDevice, error) {
	var d device
	if resp.JSON(&d) != nil || d.ID == "" {
		found, err := c.findByIdentity(ctx, identity)
		if err != nil {
			return gatehouse.MenderDevice{}, fmt.Errorf("mender: POST %s: 409 Conflict without a readable device, and looking it up failed: %w", devicesPath, err)
		}
		d = found
	}
	return d.public(), &kindError{
		err:  &rest.Error{Service: "mender", Method: http.MethodPost, Path: devicesPath, Status: http.StatusConflict, Message: "device " + d.ID + " has this identity"},
		kind: gatehouse.ErrBackendExists,
	}
}

// findByIdentity finds the device holding identity after a 409 whose body
// was unusable. deviceauth's listings (GET .../devices, POST .../search)
// filter only by status and id, so finding an identity there means paging
// through the whole fleet, up to hundreds of thousands of devices. Inventory
// indexes identity attributes, so ask it for candidates and confirm each
// against deviceauth, which owns identity_data.
func (c *Client) findByIdentity(ctx context.Context, identity map[string]string) (device, error) {
	var filters []filter
	for _, k := range slices.Sorted(maps.Keys(identity)) {
		filters = append(filters, filter{Scope: "identity", Attribute: k, Type: "$eq", Value: identity[k]})
	}
	ids, err := c.search(ctx, filters, []attribute{{Scope: "identity", Attribute: "status"}})
	if err != nil {
		return device{}, err
	}
	for _, id := range ids {
		d, err := c.getDevice(ctx, id)
		if errors.Is(err, gatehouse.ErrBackendNotFound) {
			continue // decommissioned since inventory indexed it
		}
		if err != nil {
			return device{}, err
		}
		if maps.Equal(d.identity(), identity) {
			return d, nil
		}
	}
	return device{}, errors.New("no device with this identity (a decommission may still be in progress)")
}

// GetDevice returns one device with its auth sets (ids, keys, statuses)
// and whether it is being decommissioned; an unknown id is an error
// wrapping gatehouse.ErrBackendNotFound.
func (c *Client) GetDevice(ctx context.Context, id string) (gatehouse.MenderDevice, error) {
	d, err := c.getDevice(ctx, id)
	if err != nil {
		return gatehouse.MenderDevice{}, err
	}
	return d.public(), nil
}

func (c *Client) getDevice(ctx context.Context, id string) (device, error) {
	if id == "" {
		return device{}, errNoID
	}
	resp, err := c.do(ctx, rest.Request{Method: http.MethodGet, Path: devicePath(id)})
	if err != nil {
		return device{}, notFound(err)
	}
	var d device
	if err := resp.JSON(&d); err != nil {
		return device{}, fmt.Errorf("mender: GET %s: %w", devicePath(id), err)
	}
	return d, nil
}

// SetAuthSetStatus sets one auth set's status. deviceauth takes accepted,
// rejected or pending (anything else, preauthorized included, is a 400), and
// only some moves: pending or rejected to accepted, pending or accepted to
// rejected, anything but preauthorized to pending; accepting one set
// rejects the device's other accepted one. An unknown auth set (or, when
// accepting, device) wraps gatehouse.ErrBackendNotFound; over the device
// limit is a 422.
func (c *Client) SetAuthSetStatus(ctx context.Context, deviceID, authSetID, status string) error {
	if deviceID == "" || authSetID == "" {
		return errors.New("mender: a device id and an auth set id are required")
	}
	_, err := c.do(ctx, rest.Request{
		Method: http.MethodPut,
		Path:   devicePath(deviceID) + "/auth/" + url.PathEscape(authSetID) + "/status",
		Body:   map[string]string{"status": status},
		OK:     []int{http.StatusNoContent, http.StatusOK},
	})
	return notFound(err)
}

// Decommission removes a device and its auth sets (Mender cleans up the
// rest asynchronously); an unknown id is an error wrapping
// gatehouse.ErrBackendNotFound.
func (c *Client) Decommission(ctx context.Context, id string) error {
	if id == "" {
		return errNoID
	}
	_, err := c.do(ctx, rest.Request{Method: http.MethodDelete, Path: devicePath(id)})
	return notFound(err)
}

// Check proves the URL and credentials work with one cheap authenticated
// call, listing at most one device.
func (c *Client) Check(ctx context.Context) error {
	_, err := c.do(ctx, rest.Request{Method: http.MethodGet, Path: devicesPath + "?per_page=1"})
	return err
}
