// Package protocol is the signed device protocol between gatehouse-agent and
// the server: key parsing, fingerprints, request signatures, sealing the
// bundle to the device, and the JSON messages.
package protocol

import (
	"time"
)

// Device API paths.
const (
	PathEnroll = "/device/v1/enroll"
	PathWait   = "/device/v1/wait"
	PathAck    = "/device/v1/ack"
	// PathRenew and PathRenewAck renew a provisioned gateway's certificate.
	PathRenew    = "/device/v1/renew"
	PathRenewAck = "/device/v1/renew/ack"
)

// Request signature headers.
const (
	HeaderKey       = "X-Gatehouse-Key"       // base64 (std) of the DER SubjectPublicKeyInfo
	HeaderTimestamp = "X-Gatehouse-Timestamp" // unix seconds, decimal
	HeaderNonce     = "X-Gatehouse-Nonce"     // 32 hex chars (16 random bytes)
	HeaderSignature = "X-Gatehouse-Signature" // base64 (std) of the signature
)

// MaxSkew is how far a request timestamp may be from the server clock.
const MaxSkew = 5 * time.Minute

// Key type names as shown to operators.
const (
	KeyRSA     = "rsa" // shown as "rsa-3072" etc. by KeyType
	KeyECDSA   = "ecdsa-p256"
	KeyEd25519 = "ed25519"
)
