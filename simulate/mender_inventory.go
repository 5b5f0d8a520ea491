package simulate

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"
)

// menderAttr is one scoped inventory attribute (AttributeResponse).
type menderAttr struct {
	Name        string     `json:"name"`
	Scope       string     `json:"scope"`
	Value       string     `json:"value"`
	Description string     `json:"description,omitempty"`
	Timestamp   *time.Time `json:"timestamp,omitempty"`
}

// menderInventoryDevice is inventory's Device (DeviceInventoryResponse),
// as GET .../inventory/devices/{id} and searches answer it.
type menderInventoryDevice struct {
	ID         string       `json:"id"`
	Attributes []menderAttr `json:"attributes"`
	UpdatedTS  time.Time    `json:"updated_ts"`
}

// menderTagJSON is inventory's Tag. A timestamp sent with it is ignored:
// inventory's DeviceAttributes.UnmarshalJSON drops it as read-only, and
// UpdateDeviceTagsHandler stamps every tag with the time of the call.
type menderTagJSON struct {
	Name        string `json:"name"`
	Value       string `json:"value"`
	Description string `json:"description,omitempty"`
}

// menderAttrs is what inventory knows of a device: its identity (plus the
// auth status deviceauth reports), system timestamps and user tags.
func menderAttrs(d menderDevice) []menderAttr {
	var out []menderAttr
	for k, v := range d.identity {
		out = append(out, menderAttr{Name: k, Scope: "identity", Value: v})
	}
	out = append(out,
		menderAttr{Name: "status", Scope: "identity", Value: d.status},
		menderAttr{Name: "created_ts", Scope: "system", Value: d.created.Format(time.RFC3339Nano)},
		menderAttr{Name: "updated_ts", Scope: "system", Value: d.updated.Format(time.RFC3339Nano)},
	)
	for k, t := range d.inv.tags {
		ts := t.ts
		out = append(out, menderAttr{Name: k, Scope: "tags", Value: t.value, Description: t.description, Timestamp: &ts})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Scope != out[j].Scope {
			return out[i].Scope < out[j].Scope
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func menderInventoryDeviceOf(d menderDevice, attrs []menderAttr) menderInventoryDevice {
	return menderInventoryDevice{ID: d.id, Attributes: attrs, UpdatedTS: menderLatest(d.updated, d.inv.updated)}
}

// getInventoryDevice serves GET /api/management/v1/inventory/devices/{id}
// (GetDeviceHandler): 404 until inventory holds the device, and the tags'
// ETag once it has any.
func (a *menderAPI) getInventoryDevice(w http.ResponseWriter, r *http.Request) {
	d, ok := a.m.inventoryDevice(r.PathValue("id"))
	if !ok {
		writeMenderErr(w, r, menderInventoryNotFound())
		return
	}
	if d.inv.etag != "" {
		w.Header().Set("ETag", d.inv.etag)
	}
	writeMenderJSON(w, http.StatusOK, menderInventoryDeviceOf(d, menderAttrs(d)))
}

// setTags serves PATCH (upsert) and PUT (replace) of a device's tags. For a
// device inventory does not hold it answers 200 and stores nothing.
func (a *menderAPI) setTags(w http.ResponseWriter, r *http.Request) {
	var tags []menderTagJSON
	if !decodeMender(w, r, &tags) {
		return
	}
	err := a.m.setTags(r.PathValue("id"), tags, r.Method == http.MethodPut, r.Header.Get("If-Match"))
	if err != nil {
		writeMenderErr(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

var menderScopes = []string{"system", "identity", "inventory", "monitor", "tags"}

type menderFilter struct {
	Scope     string `json:"scope"`
	Attribute string `json:"attribute"`
	Type      string `json:"type"`
	Value     any    `json:"value"`
}

type menderSelect struct {
	Scope     string `json:"scope"`
	Attribute string `json:"attribute"`
}

// menderSearch is inventory's SearchParams, less sort and free text.
type menderSearch struct {
	Page       int            `json:"page"`
	PerPage    int            `json:"per_page"`
	DeviceIDs  []string       `json:"device_ids"`
	Filters    []menderFilter `json:"filters"`
	Attributes []menderSelect `json:"attributes"`
}

func (p *menderSearch) validate() error {
	p.Page, p.PerPage = max(p.Page, 1), menderOr(p.PerPage, 20)
	if p.PerPage < 1 || p.PerPage > 500 {
		return menderBadRequest("per_page: must be between 1 and 500")
	}
	for _, f := range p.Filters {
		if !slices.Contains(menderScopes, f.Scope) || f.Attribute == "" {
			return menderBadRequest("filters: invalid scope or attribute")
		}
		if !slices.Contains([]string{"$eq", "$ne", "$in", "$nin", "$exists"}, f.Type) {
			return menderBadRequest("filters: type %q is not supported by the simulator", f.Type)
		}
	}
	return nil
}

func menderOr(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// match reports whether every filter holds, as inventory ANDs them.
func (p *menderSearch) match(attrs []menderAttr) bool {
	for _, f := range p.Filters {
		i := slices.IndexFunc(attrs, func(a menderAttr) bool { return a.Scope == f.Scope && a.Name == f.Attribute })
		if !f.holds(i >= 0, func() string { return attrs[i].Value }) {
			return false
		}
	}
	return true
}

func (f menderFilter) holds(present bool, value func() string) bool {
	switch f.Type {
	case "$exists":
		want, _ := f.Value.(bool)
		return present == want
	case "$eq":
		s, ok := f.Value.(string)
		return present && ok && s == value()
	case "$ne":
		s, ok := f.Value.(string)
		return !present || !ok || s != value()
	case "$in":
		return present && slices.Contains(menderStrings(f.Value), value())
	case "$nin":
		return !present || !slices.Contains(menderStrings(f.Value), value())
	}
	return false
}

func menderStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// selected keeps the attributes the caller asked for, or all of them.
func (p *menderSearch) selected(attrs []menderAttr) []menderAttr {
	if len(p.Attributes) == 0 {
		return attrs
	}
	return slices.DeleteFunc(attrs, func(a menderAttr) bool {
		return !slices.Contains(p.Attributes, menderSelect{Scope: a.Scope, Attribute: a.Name})
	})
}

// searchInventory serves POST /api/management/v2/inventory/filters/search,
// over the devices inventory holds.
func (a *menderAPI) searchInventory(w http.ResponseWriter, r *http.Request) {
	var p menderSearch
	if !decodeMenderOptional(w, r, &p) {
		return
	}
	if err := p.validate(); err != nil {
		writeMenderErr(w, r, err)
		return
	}
	var hits []menderInventoryDevice
	for _, d := range a.m.inventorySnapshot() {
		attrs := menderAttrs(d)
		if (len(p.DeviceIDs) == 0 || slices.Contains(p.DeviceIDs, d.id)) && p.match(attrs) {
			hits = append(hits, menderInventoryDeviceOf(d, p.selected(attrs)))
		}
	}
	lo, hi, more := menderWindow(len(hits), p.Page, p.PerPage)
	w.Header().Set("X-Total-Count", strconv.Itoa(len(hits)))
	setMenderLinks(w, r, p.Page, p.PerPage, more)
	writeMenderJSON(w, http.StatusOK, append([]menderInventoryDevice{}, hits[lo:hi]...))
}

func menderLatest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
