package protocol

import "time"

// RenewRequest asks for a fresh certificate before the current one expires.
// SealKey is what a new private key (issue mode) is sealed to; CSR (sign
// mode) must be for the same certificate key the gateway enrolled with.
type RenewRequest struct {
	SealKey []byte `json:"seal_key"`
	CSR     string `json:"csr,omitempty"`
}

// Renewal is the server's answer: the new certificate, not yet in force for
// gatehouse until the agent confirms it wrote it (RenewAckRequest); until
// then a repeated request gets this same certificate. Sealed holds
// FieldPrivateKey when the PKI made the key.
type Renewal struct {
	Name        string            `json:"name"`
	Serial      string            `json:"serial"`
	Replaces    string            `json:"replaces"`
	NotAfter    time.Time         `json:"not_after"`
	Certificate string            `json:"certificate"`
	CAChain     string            `json:"ca_chain,omitempty"`
	Sealed      map[string][]byte `json:"sealed,omitempty"`
}

// RenewAckRequest confirms the renewed certificate is on disk; the server
// then revokes the one it replaced.
type RenewAckRequest struct {
	Serial string `json:"serial"`
}
