package protocol

// EnrollRequest introduces a device. The key itself travels in the signature
// headers; SealKey is the HPKE public key its bundle is sealed to.
type EnrollRequest struct {
	MAC          string `json:"mac"`
	SealKey      []byte `json:"seal_key"`
	Hostname     string `json:"hostname,omitempty"`
	AgentVersion string `json:"agent_version,omitempty"`
	// CSR (PEM) is signed by the PKI in "sign" mode, so the certificate's
	// key never leaves the gateway.
	CSR string `json:"csr,omitempty"`
}

// WaitRequest asks the server to answer once the device's state differs from
// State, or after the long-poll timeout.
type WaitRequest struct {
	State string `json:"state"`
}

// Status is the server's answer to enroll and wait.
type Status struct {
	DeviceID         string  `json:"device_id"`
	State            string  `json:"state"`
	Fingerprint      string  `json:"fingerprint"`
	VerificationCode string  `json:"verification_code"`
	Name             string  `json:"name,omitempty"`
	Reason           string  `json:"reason,omitempty"`
	Bundle           *Bundle `json:"bundle,omitempty"`
	// PollAfter, in seconds, asks the device to wait that long before its
	// next wait instead of asking again at once: the server holds a bounded
	// number of waits open, for the gateways that began waiting most
	// recently, and paces the others.
	PollAfter int `json:"poll_after,omitempty"`
	// Session, in the answer to a request signed with the device key, lets
	// the next waits be signed with it instead (see Sessions).
	Session *SessionGrant `json:"session,omitempty"`
}

// Sealed bundle field names.
const (
	FieldDPSPrimaryKey = "dps_primary_key"
	FieldPrivateKey    = "private_key"
)

// Bundle is the gateway's own credentials. Secret fields are in Sealed, each
// sealed to the device with Seal under its field name.
type Bundle struct {
	Name              string            `json:"name"`
	DPSIDScope        string            `json:"dps_id_scope,omitempty"`
	DPSRegistrationID string            `json:"dps_registration_id,omitempty"`
	Certificate       string            `json:"certificate,omitempty"`
	CAChain           string            `json:"ca_chain,omitempty"`
	Sealed            map[string][]byte `json:"sealed,omitempty"`
}

// AckRequest confirms the bundle was written; the server then deletes it.
type AckRequest struct {
	Name string `json:"name"`
}
