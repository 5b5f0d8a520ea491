package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"gatehouse"
	"gatehouse/audit"
	"gatehouse/client"
	"gatehouse/provision"
	"gatehouse/simulate"
)

// fleetWant is what the end state must be: the gateways approved, by MAC
// with their names, and those dismissed.
type fleetWant struct {
	gws       map[string]*Gateway
	approved  map[string]string // MAC -> name
	dismissed map[string]bool
}

func wantOf(ds []*decision) fleetWant {
	w := fleetWant{gws: map[string]*Gateway{}, approved: map[string]string{}, dismissed: map[string]bool{}}
	for _, d := range ds {
		w.gws[d.gw.MAC] = d.gw
		if d.dismiss {
			w.dismissed[d.gw.MAC] = true
		} else {
			w.approved[d.gw.MAC] = d.name
		}
	}
	return w
}

// names is the set of approved names.
func (w fleetWant) names() map[string]string {
	out := map[string]string{}
	for mac, name := range w.approved {
		out[name] = mac
	}
	return out
}

// countServer checks every gateway's state on the server: each approved
// one provisioned under its name, each dismissed one dismissed, one device
// per gateway.
func countServer(ctx context.Context, c *client.Client, w fleetWant, t *tally) error {
	devs, err := allDevices(ctx, c)
	if err != nil {
		return err
	}
	byMAC := map[string][]*gatehouse.Device{}
	for _, d := range devs {
		byMAC[d.MAC] = append(byMAC[d.MAC], d)
	}
	for mac := range w.gws {
		ds := byMAC[mac]
		if len(ds) != 1 {
			if len(ds) == 0 {
				t.lost("gatehouse holds no device for %s", mac)
			} else {
				t.doubled("gatehouse holds %d devices for %s", len(ds), mac)
			}
			continue
		}
		checkState(ds[0], w, t)
	}
	return nil
}

func checkState(d *gatehouse.Device, w fleetWant, t *tally) {
	if w.dismissed[d.MAC] {
		if d.State != gatehouse.StateDismissed {
			t.lost("dismissal of %s: it is %s", d.MAC, d.State)
		}
		return
	}
	name := w.approved[d.MAC]
	done := d.State == gatehouse.StateProvisioned || d.State == gatehouse.StateConfigured
	if !done || d.Name != name {
		t.lost("approval of %s as %s: it is %s named %q (%s)", d.MAC, name, d.State, d.Name, d.Reason)
	}
}

// allDevices pages through every device, in every state.
func allDevices(ctx context.Context, c *client.Client) ([]*gatehouse.Device, error) {
	var out []*gatehouse.Device
	for {
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		l, err := c.ListDevices(callCtx, client.ListOptions{Limit: 500, Offset: len(out)})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		out = append(out, l.Devices...)
		if len(l.Devices) == 0 || len(out) >= l.Total {
			return out, nil
		}
	}
}

// countBackends checks each simulator holds exactly one live object per
// approved gateway and none for anyone else: one accepted Mender device
// with the gateway's key, one DPS enrollment, one unrevoked certificate,
// and, once they registered as IoT Edge does (edge), one IoT Hub device.
func countBackends(b *Backends, w fleetWant, edge bool, t *tally) {
	countMender(b.Mender.State, w, t)
	countDPS(b.DPS.State, w, t)
	countVault(b.Vault.State, w, t)
	if edge {
		countHub(b.Hub.State, w, t)
	}
}

func countMender(m *simulate.Mender, w fleetWant, t *tally) {
	byMAC := map[string][]gatehouse.MenderDevice{}
	for _, d := range m.Devices() {
		byMAC[d.IdentityData["mac"]] = append(byMAC[d.IdentityData["mac"]], d)
	}
	for mac, ds := range byMAC {
		if _, ok := w.approved[mac]; !ok {
			for _, d := range ds {
				if admitted(d) {
					t.doubled("mender admitted device %s for %s, which was not approved", d.ID, mac)
				}
			}
		}
	}
	for mac, name := range w.approved {
		ds := byMAC[mac]
		switch {
		case len(ds) == 0:
			t.lost("mender holds no device for %s (%s)", name, mac)
		case len(ds) > 1:
			t.doubled("mender holds %d devices for %s (%s)", len(ds), name, mac)
		default:
			checkMenderDevice(ds[0], w.gws[mac], name, t)
		}
	}
}

// admitted says whether gatehouse let a device in: a device the gateway's
// own client made stays pending until then.
func admitted(d gatehouse.MenderDevice) bool {
	for _, s := range d.AuthSets {
		if s.Status == gatehouse.MenderAccepted || s.Status == gatehouse.MenderPreauthorized {
			return true
		}
	}
	return d.Status == gatehouse.MenderAccepted || d.Status == gatehouse.MenderPreauthorized
}

// checkMenderDevice: accepted, with exactly one accepted auth set, ours.
func checkMenderDevice(d gatehouse.MenderDevice, g *Gateway, name string, t *tally) {
	if d.Status != gatehouse.MenderAccepted {
		t.lost("mender device of %s is %s, not accepted", name, d.Status)
	}
	accepted := 0
	for _, s := range d.AuthSets {
		if s.Status != gatehouse.MenderAccepted {
			continue
		}
		accepted++
		if !samePublicKey(s.PublicKey, g.Key.Public()) {
			t.lost("mender device of %s accepted another key", name)
		}
	}
	if accepted > 1 {
		t.doubled("mender device of %s has %d accepted auth sets", name, accepted)
	}
}

func samePublicKey(pemText string, want crypto.PublicKey) bool {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return false
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return false
	}
	eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(want)
}

func countDPS(d *simulate.DPS, w fleetWant, t *tally) {
	names := w.names()
	seen := map[string]int{}
	for _, e := range d.Enrollments() {
		seen[e.RegistrationID]++
		if _, ok := names[e.RegistrationID]; !ok {
			t.doubled("dps holds an enrollment %s for no approved gateway", e.RegistrationID)
		}
	}
	for name := range names {
		switch n := seen[name]; {
		case n == 0:
			t.lost("dps holds no enrollment for %s", name)
		case n > 1:
			t.doubled("dps holds %d enrollments for %s", n, name)
		}
	}
}

// countVault counts unrevoked certificates by common name.
func countVault(p *simulate.PKI, w fleetWant, t *tally) {
	names := w.names()
	live := liveCerts(p, t)
	for cn, serials := range live {
		if _, ok := names[cn]; !ok {
			t.doubled("vault holds %d valid certificates for %q, no approved gateway", len(serials), cn)
		}
	}
	for name := range names {
		switch n := len(live[name]); {
		case n == 0:
			t.lost("vault holds no valid certificate for %s", name)
		case n > 1:
			t.doubled("vault holds %d valid certificates for %s", n, name)
		}
	}
}

// liveCerts are the serials of the unrevoked certificates by common name.
func liveCerts(p *simulate.PKI, t *tally) map[string][]string {
	out := map[string][]string{}
	for _, c := range p.Live() {
		x, err := parseCert([]byte(c.CertificatePEM))
		if err != nil {
			t.lost("vault certificate %s does not parse: %v", c.Serial, err)
			continue
		}
		out[x.Subject.CommonName] = append(out[x.Subject.CommonName], c.Serial)
	}
	return out
}

func parseCert(pemText []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(pemText)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM CERTIFICATE")
	}
	return x509.ParseCertificate(block.Bytes)
}

// countHub counts the IoT Hub devices DPS assigned, over every hub.
func countHub(h *simulate.Hub, w fleetWant, t *tally) {
	names := w.names()
	seen := map[string]int{}
	for _, hub := range h.Hubs() {
		for _, d := range h.Devices(hub) {
			seen[d.DeviceID]++
			if _, ok := names[d.DeviceID]; !ok {
				t.doubled("iot hub %s holds a device %s for no approved gateway", hub, d.DeviceID)
			}
		}
	}
	for name := range names {
		switch n := seen[name]; {
		case n == 0:
			t.lost("no iot hub holds a device for %s", name)
		case n > 1:
			t.doubled("iot hubs hold %d devices for %s", n, name)
		}
	}
}

// countAudit reads the audit log through the REST API, checks its hash
// chain is whole, and finds each decision the scenario made recorded as a
// success exactly once, under the id of one of the calls made for it.
func countAudit(ctx context.Context, c *client.Client, ds []*decision, t *tally) error {
	var entries []audit.Entry
	read := func(yield func(audit.Entry, error) bool) {
		for e, err := range c.AuditEntries(ctx) {
			if err == nil {
				entries = append(entries, e)
			}
			if !yield(e, err) {
				return
			}
		}
	}
	if _, err := audit.Verify(read, audit.Head{}); err != nil {
		var p *audit.Problem
		if !errors.As(err, &p) {
			return fmt.Errorf("read the audit log: %w", err)
		}
		t.lost("audit chain: %v", err)
	}
	made := decisionEntries(entries)
	for _, d := range ds {
		checkDecisionAudit(d, made[auditKey{action: auditAction(d), target: d.deviceID}], t)
	}
	return nil
}

type auditKey struct{ action, target string }

// decisionEntries are the successful approvals and dismissals that
// changed something; a dismissal repeated on a dismissed device is
// recorded as "unchanged" and is not one.
func decisionEntries(entries []audit.Entry) map[auditKey][]audit.Entry {
	out := map[auditKey][]audit.Entry{}
	for _, e := range entries {
		if e.Result != "ok" || (e.Action != provision.ActionDeviceApprove && e.Action != provision.ActionDeviceDismiss) {
			continue
		}
		var detail map[string]any
		if json.Unmarshal([]byte(e.Detail), &detail) == nil && detail["unchanged"] != nil {
			continue
		}
		k := auditKey{action: e.Action, target: e.Target}
		out[k] = append(out[k], e)
	}
	return out
}

func auditAction(d *decision) string {
	if d.dismiss {
		return provision.ActionDeviceDismiss
	}
	return provision.ActionDeviceApprove
}

func checkDecisionAudit(d *decision, got []audit.Entry, t *tally) {
	switch {
	case len(got) == 0:
		t.lost("audit entry of the %s of %s", d.verb(), d.gw.MAC)
		return
	case len(got) > 1:
		t.doubled("audit holds %d entries of the %s of %s", len(got), d.verb(), d.gw.MAC)
	}
	if !slices.Contains(d.requestIDs, got[0].RequestID) {
		t.lost("the audit entry of the %s of %s names request %q, none of the scenario's %d calls for it",
			d.verb(), d.gw.MAC, got[0].RequestID, len(d.requestIDs))
	}
}
