package simulate

import "net/http"

// getInventoryDevice serves GET /api/management/v1/inventory/devices/{id}.
func (a *menderAPI) getInventoryDevice(w http.ResponseWriter, r *http.Request) {
	d, ok := a.m.device(r.PathValue("id"))
	if !ok {
		writeMenderError(w, r, http.StatusNotFound, "Device not found")
		return
	}
	writeMenderJSON(w, http.StatusOK, menderInventoryDevice{ID: d.id, Attributes: menderAttrs(d), UpdatedTS: menderLatest(d.updated, d.tagsTS)})
}
