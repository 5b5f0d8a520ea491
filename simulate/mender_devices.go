package simulate

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// menderDeviceJSON is deviceauth's Device object (model/device.go).
type menderDeviceJSON struct {
	ID              string              `json:"id"`
	IdentityData    map[string]string   `json:"identity_data"`
	Status          string              `json:"status"`
	CreatedTS       time.Time           `json:"created_ts"`
	UpdatedTS       time.Time           `json:"updated_ts"`
	CheckInTime     *time.Time          `json:"check_in_time,omitempty"`
	AuthSets        []menderAuthSetJSON `json:"auth_sets"`
	Decommissioning bool                `json:"decommissioning"`
}

// menderAuthSetJSON is the common AuthSet object.
type menderAuthSetJSON struct {
	ID           string            `json:"id"`
	DeviceID     string            `json:"device_id"`
	IdentityData map[string]string `json:"identity_data"`
	Pubkey       string            `json:"pubkey"`
	Status       string            `json:"status"`
	TS           time.Time         `json:"ts"`
}

func menderDeviceJSONOf(d menderDevice) menderDeviceJSON {
	out := menderDeviceJSON{
		ID: d.id, IdentityData: d.identity, Status: d.status,
		CreatedTS: d.created, UpdatedTS: d.updated, AuthSets: []menderAuthSetJSON{},
	}
	if !d.checkIn.IsZero() {
		out.CheckInTime = &d.checkIn
	}
	for _, s := range d.authSets {
		out.AuthSets = append(out.AuthSets, menderAuthSetJSON{
			ID: s.id, DeviceID: d.id, IdentityData: d.identity, Pubkey: s.pubkey, Status: s.status, TS: s.ts,
		})
	}
	return out
}

var menderStatuses = []string{"pending", "accepted", "rejected", StatusPreauthorized, "noauth"}

// menderDeviceFilter is what both device listings filter on: any of the statuses
// and any of the ids, each ignored when empty.
type menderDeviceFilter struct {
	status []string
	id     []string
}

func (f menderDeviceFilter) validate() error {
	for _, s := range f.status {
		if !slices.Contains(menderStatuses, s) {
			return menderBadRequest("status must be one of: pending, accepted, rejected, preauthorized, noauth")
		}
	}
	return nil
}

func (f menderDeviceFilter) keep(d *menderDevice) bool {
	return (len(f.status) == 0 || slices.Contains(f.status, d.status)) &&
		(len(f.id) == 0 || slices.Contains(f.id, d.id))
}

// listDevices serves GET /api/management/v2/devauth/devices.
func (a *menderAPI) listDevices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := menderDeviceFilter{id: q["id"]}
	if s := q.Get("status"); s != "" {
		f.status = []string{s}
	}
	a.writeDevices(w, r, f)
}

// searchDevices serves POST /api/management/v2/devauth/devices/search, whose
// filters may each be a string or an array of strings.
func (a *menderAPI) searchDevices(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Status menderStringOrList `json:"status"`
		ID     menderStringOrList `json:"id"`
	}
	if !decodeMender(w, r, &body) {
		return
	}
	a.writeDevices(w, r, menderDeviceFilter{status: body.Status, id: body.ID})
}

func (a *menderAPI) writeDevices(w http.ResponseWriter, r *http.Request, f menderDeviceFilter) {
	pageNo, perPage, err := menderPage(r.URL.Query())
	if err == nil {
		err = f.validate()
	}
	if err != nil {
		writeMenderErr(w, r, err)
		return
	}
	devs := a.m.snapshot(f.keep)
	lo, hi, more := menderWindow(len(devs), pageNo, perPage)
	out := make([]menderDeviceJSON, 0, hi-lo)
	for _, d := range devs[lo:hi] {
		out = append(out, menderDeviceJSONOf(d))
	}
	setMenderLinks(w, r, pageNo, perPage, more)
	writeMenderJSON(w, http.StatusOK, out)
}

type menderStringOrList []string

func (s *menderStringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = menderStringOrList{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}
