package gatehouse

import "time"

// AllowlistEntry is a gateway an operator listed by MAC before it enrolled:
// the first key to enroll with that MAC is approved under Name with Labels,
// and pinned here. The MAC is only a claim the gateway makes, so the entry
// trusts whoever claims it first; the pin keeps it from trusting a second.
type AllowlistEntry struct {
	MAC        string            `json:"mac"`
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels,omitempty"`
	ImportedBy string            `json:"imported_by"`
	ImportedAt time.Time         `json:"imported_at"`
	// DeviceID, Fingerprint and UsedAt are set once a key has enrolled with
	// the MAC: the device it became and the key it is pinned to.
	DeviceID    string     `json:"device_id,omitempty"`
	Fingerprint string     `json:"fingerprint,omitempty"`
	UsedAt      *time.Time `json:"used_at,omitempty"`
}

// Used reports whether a key has enrolled with the entry's MAC.
func (e *AllowlistEntry) Used() bool { return e.DeviceID != "" }
