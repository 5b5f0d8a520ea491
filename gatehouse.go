// Package gatehouse holds the domain types of the gateway provisioning service:
// devices, their keys, provisioning steps, events and the application error.
// Implementations live in packages named for what they wrap.
package gatehouse

import "time"

// State is where a gateway stands in its life.
type State string

// Device states; see DESIGN.md for the transitions.
const (
	StatePending        State = "pending"
	StateApproved       State = "approved"
	StateProvisioning   State = "provisioning"
	StateProvisioned    State = "provisioned"
	StateConfigured     State = "configured"
	StateDismissed      State = "dismissed"
	StateFailed         State = "failed"
	StateStalled        State = "stalled"
	StateDecommissioned State = "decommissioned"
)

// States lists every state, in the order of the happy path first.
var States = []State{
	StatePending, StateApproved, StateProvisioning, StateProvisioned, StateConfigured,
	StateDismissed, StateFailed, StateStalled, StateDecommissioned,
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Device is one gateway. Its identity is the fingerprint of its current key;
// the MAC is a claim shown to the operator, never proof.
type Device struct {
	ID               string            `json:"id"`
	State            State             `json:"state"`
	Name             string            `json:"name,omitempty"`
	MAC              string            `json:"mac"`
	Fingerprint      string            `json:"fingerprint"`
	KeyType          string            `json:"key_type"`
	VerificationCode string            `json:"verification_code"`
	SourceAddr       string            `json:"source_addr,omitempty"`
	FirstSeen        time.Time         `json:"first_seen"`
	LastSeen         time.Time         `json:"last_seen"`
	ApprovedBy       string            `json:"approved_by,omitempty"`
	ApprovedAt       *time.Time        `json:"approved_at,omitempty"`
	Reason           string            `json:"reason,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
	Hub              string            `json:"hub,omitempty"` // the IoT Hub DPS assigned it to
	UpdatedAt        time.Time         `json:"updated_at"`
	Steps            []Step            `json:"steps,omitempty"`

	// Hostname and AgentVersion are what the agent said of itself when it
	// last enrolled: claims, like the MAC, never proof.
	Hostname     string `json:"hostname,omitempty"`
	AgentVersion string `json:"agent_version,omitempty"`

	// Decommission is the device's removal from the backends, once asked.
	Decommission *Decommission `json:"decommission,omitempty"`
	// SameMAC and SameCode flag a pending device that other pending devices
	// share its MAC or its verification code with, listing their ids (a few
	// at most): one of them may be an impostor, so the operator must not
	// take either for an ordinary stranger.
	SameMAC  []string `json:"same_mac,omitempty"`
	SameCode []string `json:"same_code,omitempty"`
	// RekeyOf is set on a pending device whose new key came with the MAC
	// of an approved gateway (reflashed, storage replaced): it is a
	// candidate to replace that gateway's key, never a stranger. The
	// gateway lists its candidates in RekeyCandidates.
	RekeyOf         *RekeyTarget `json:"rekey_of,omitempty"`
	RekeyCandidates []string     `json:"rekey_candidates,omitempty"`
}

// RekeyTarget names the gateway a re-key candidate would replace the key of.
type RekeyTarget struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	State State  `json:"state"`
}

// DeviceKey is a public key a device has presented. PublicKey is the DER
// SubjectPublicKeyInfo; SealKey is the HPKE public key the agent asked its
// bundle to be sealed to.
type DeviceKey struct {
	Fingerprint string
	DeviceID    string
	KeyType     string
	PublicKey   []byte
	SealKey     []byte
	CSR         string // PEM, for a PKI that signs the agent's own key
}

// StepName names one backend's provisioning step.
type StepName string

// Provisioning steps, one per backend.
const (
	StepMender StepName = "mender"
	StepDPS    StepName = "dps"
	StepVault  StepName = "vault"
	// StepHub follows a provisioned gateway until DPS assigns it to an IoT
	// Hub, then applies its deployment manifest there.
	StepHub StepName = "iothub"
)

// StepState is where one provisioning step stands.
type StepState string

// Step states.
const (
	StepPending   StepState = "pending"
	StepRunning   StepState = "running"
	StepSucceeded StepState = "succeeded"
	StepFailed    StepState = "failed"
)

// Step is one backend's part of provisioning a device. Output holds what the
// backend returned that is safe to show; Sealed holds secret fields, each
// sealed to the device so the server never stores them in clear.
type Step struct {
	Name       StepName          `json:"name"`
	State      StepState         `json:"state"`
	Attempts   int               `json:"attempts"`
	LastError  string            `json:"last_error,omitempty"`
	StartedAt  *time.Time        `json:"started_at,omitempty"`
	FinishedAt *time.Time        `json:"finished_at,omitempty"`
	Output     map[string]string `json:"output,omitempty"`
	Sealed     map[string][]byte `json:"-"`
	JobID      int64             `json:"-"`
}

// Event is one entry of a device's timeline and the audit log.
type Event struct {
	ID       int64     `json:"id"`
	DeviceID string    `json:"device_id"`
	At       time.Time `json:"at"`
	Kind     string    `json:"kind"`
	Actor    string    `json:"actor,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// Role is what an operator token may do.
type Role string

// Roles, from least to most powerful.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Allows reports whether r includes the rights of want.
func (r Role) Allows(want Role) bool { return r.rank() >= want.rank() }

// Valid reports whether r is one of the three roles.
func (r Role) Valid() bool { return r.rank() > 0 }

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Token is an API token. Only the hash of its secret is ever stored.
type Token struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
}
