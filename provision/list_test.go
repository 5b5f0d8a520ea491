package provision_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/provision"
)

func TestListDevicesByCodeAndExport(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	var ids, codes []string
	for _, host := range []string{"edge-a", "edge-b", "edge-c"} {
		g := newGateway(t)
		st, err := tb.svc.Enroll(ctx, g.sig, protocol.EnrollRequest{MAC: g.mac, SealKey: g.sealKey(t), Hostname: host, AgentVersion: "2.1"}, "192.0.2.7")
		if err != nil {
			t.Fatal(err)
		}
		ids, codes = append(ids, st.DeviceID), append(codes, st.VerificationCode)
	}
	// The code as people write it finds its gateway.
	l, err := tb.svc.ListDevices(ctx, provision.ListFilter{Search: "  " + codes[1][:3] + "-" + codes[1][3:], Counts: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(l.Devices, func(d *gatehouse.Device) bool { return d.ID == ids[1] }) {
		t.Errorf("searching the code %s spaced lists %d devices, not %s", codes[1], len(l.Devices), ids[1])
	}
	if l.Counts[gatehouse.StatePending] != l.Total {
		t.Errorf("counts %v, total %d: want every match pending", l.Counts, l.Total)
	}
	if d := l.Devices[0]; d.Hostname == "" || d.AgentVersion != "2.1" {
		t.Errorf("listed device says hostname %q, agent %q", d.Hostname, d.AgentVersion)
	}
	_, err = tb.svc.ListDevices(ctx, provision.ListFilter{Sort: "fingerprint"})
	wantCode(t, err, gatehouse.EINVALID)

	// An export lists every match in the order asked for, and stops when told.
	var got []string
	err = tb.svc.ExportDevices(ctx, provision.ListFilter{Sort: "-last_seen", Limit: 1, Offset: 2}, func(d *gatehouse.Device) error {
		got = append(got, d.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ids[2], ids[1], ids[0]}; !slices.Equal(got, want) {
		t.Errorf("export = %q, want every device, latest seen first: %q", got, want)
	}
	stop := errors.New("enough")
	calls := 0
	err = tb.svc.ExportDevices(ctx, provision.ListFilter{}, func(*gatehouse.Device) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("export told to stop: err %v after %d calls, want the callback's error after 1", err, calls)
	}
	err = tb.svc.ExportDevices(ctx, provision.ListFilter{State: "bogus"}, func(*gatehouse.Device) error { return nil })
	wantCode(t, err, gatehouse.EINVALID)
}
