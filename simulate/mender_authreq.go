package simulate

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"gatehouse"
)

// The device side follows mender-server backend/services/deviceauth:
// api/http/api_devauth.go (SubmitAuthRequestHandler), model/authreq.go
// (AuthReq.Validate), devauth/devauth.go (SubmitAuthRequest,
// processPreAuthRequest, handlePreAuthDevice, processAuthRequest,
// getDeviceFromAuthRequest, VerifyToken) and utils (VerifyAuthReqSign).

// menderAuthReq is deviceauth's AuthReq: id_data is the identity as a JSON
// string, not an object.
type menderAuthReq struct {
	IDData      string `json:"id_data"`
	TenantToken string `json:"tenant_token"`
	Pubkey      string `json:"pubkey"`
}

// menderDeviceClaims are the claims of a device JWT: the id is the auth
// set's, the subject the device's.
type menderDeviceClaims struct {
	Exp    int64  `json:"exp"`
	Iat    int64  `json:"iat"`
	Iss    string `json:"iss"`
	Jti    string `json:"jti"`
	Sub    string `json:"sub"`
	Device bool   `json:"mender.device"`
	Plan   string `json:"mender.plan"`
}

// AuthRequest is a device's POST /api/devices/v1/authentication/auth_requests:
// body is the raw request body (the signed bytes), signature the
// X-MEN-Signature header. It answers a device JWT for an accepted auth set,
// or a *menderError: 400 for a malformed request, 401 for a pending,
// rejected or unknown one (which it records) or a bad signature.
func (m *Mender) AuthRequest(ctx context.Context, body []byte, signature string) (string, error) {
	if err := m.enter(ctx, "mender"); err != nil {
		return "", err
	}
	token, err := m.authRequest(body, signature)
	if err != nil {
		return "", err
	}
	if err := m.lose("mender"); err != nil {
		return "", err
	}
	return token, nil
}

// authRequest validates, records and answers one auth request in
// deviceauth's order. The signature is checked last, and only when a token
// would be issued: what the request recorded (a new pending device or auth
// set, a preauthorized set turned accepted) stays even when it is then
// refused for its signature.
func (m *Mender) authRequest(body []byte, signature string) (string, error) {
	req, pub, identity, err := parseAuthRequest(body)
	if err != nil {
		return "", err
	}
	if signature == "" {
		return "", menderBadRequest("missing request signature header")
	}
	token, err := m.submitAuthRequest(req, identity)
	if err != nil {
		return "", err
	}
	if err := verifyAuthSignature(signature, pub, body); err != nil {
		return "", menderFail(http.StatusUnauthorized, "signature verification failed")
	}
	return token, nil
}

// parseAuthRequest is the handler's decode plus AuthReq.Validate: the key
// is normalised and id_data re-marshalled with sorted keys.
func parseAuthRequest(body []byte) (menderAuthReq, crypto.PublicKey, map[string]string, error) {
	var req menderAuthReq
	if err := json.Unmarshal(body, &req); err != nil {
		return req, nil, nil, menderBadRequest("failed to decode auth request: %v", err)
	}
	if req.IDData == "" {
		return req, nil, nil, menderBadRequest("invalid auth request: id_data must be provided")
	}
	if req.Pubkey == "" {
		return req, nil, nil, menderBadRequest("invalid auth request: pubkey must be provided")
	}
	pub, pem, err := parsePublicKey(req.Pubkey)
	if err != nil {
		return req, nil, nil, err
	}
	req.Pubkey = pem
	var raw map[string]any
	if err := json.Unmarshal([]byte(req.IDData), &raw); err != nil {
		return req, nil, nil, menderBadRequest("invalid auth request: %v", err)
	}
	if len(raw) == 0 { // "{}" is an identity to deviceauth: nothing requires attributes
		return req, pub, map[string]string{}, nil
	}
	identity, err := menderStringMap(raw)
	return req, pub, identity, err
}

// submitAuthRequest is SubmitAuthRequest: a preauthorized set holding the
// key is accepted (handlePreAuthDevice), otherwise the device and a pending
// set are recorded if new (processAuthRequest); only an accepted set gets a
// token.
func (m *Mender) submitAuthRequest(req menderAuthReq, identity map[string]string) (string, error) {
	key, err := identityKey(identity)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, set, err := m.acceptPreauthorized(key, req.Pubkey)
	if err == nil && set < 0 {
		d, set, err = m.recordAuthRequest(key, identity, req.Pubkey)
	}
	if err != nil {
		return "", err
	}
	if d.authSets[set].status != gatehouse.MenderAccepted {
		return "", menderFail(http.StatusUnauthorized, "dev auth: unauthorized")
	}
	return m.issueDeviceToken(d, d.authSets[set].id), nil
}

// acceptPreauthorized is processPreAuthRequest and handlePreAuthDevice: a
// preauthorized set with this identity and key becomes accepted, the
// device's other accepted sets rejected. set is -1 when there is none. A
// full device limit is a 401 to the device, which is not told why.
func (m *Mender) acceptPreauthorized(key, pub string) (*menderDevice, int, error) {
	d, ok := m.devices[m.byIdentity[key]]
	if !ok {
		return nil, -1, nil
	}
	i := d.keySet(pub)
	if i < 0 || d.authSets[i].status != StatusPreauthorized {
		return nil, -1, nil
	}
	if d.status != gatehouse.MenderAccepted && !m.canAccept() {
		return nil, -1, menderFail(http.StatusUnauthorized, "unauthorized")
	}
	d.rejectAccepted(d.authSets[i].id)
	d.authSets[i].status = gatehouse.MenderAccepted
	return d, i, m.updateDeviceStatus(d, gatehouse.MenderAccepted, d.status)
}

// recordAuthRequest is processAuthRequest: an unknown identity becomes a
// device, a new key a pending auth set; a known set keeps its status (a
// rejected set stays rejected).
func (m *Mender) recordAuthRequest(key string, identity map[string]string, pub string) (*menderDevice, int, error) {
	d, ok := m.devices[m.byIdentity[key]]
	if !ok {
		d = m.addDevice(key, identity)
	}
	i := d.keySet(pub)
	if i < 0 {
		m.addAuthSet(d, pub, gatehouse.MenderPending)
		i = len(d.authSets) - 1
	}
	return d, i, m.updateDeviceStatus(d, "", d.status)
}

// issueDeviceToken signs a device JWT and records it; deviceauth keys its
// tokens by the auth set id, so a new one replaces the set's previous
// record. The caller holds m.mu.
func (m *Mender) issueDeviceToken(d *menderDevice, authSetID string) string {
	now := m.now()
	d.checkIn = now.UTC()
	m.tokens[authSetID] = d.id
	return signHS256(m.tokenKey, menderDeviceClaims{
		Exp: now.Add(menderDeviceTokenTTL).Unix(), Iat: now.Unix(), Iss: "Mender",
		Jti: authSetID, Sub: d.id, Device: true, Plan: "enterprise",
	})
}

// deleteTokens is DeleteTokenByDevId. The caller holds m.mu.
func (m *Mender) deleteTokens(deviceID string) {
	for jti, dev := range m.tokens {
		if dev == deviceID {
			delete(m.tokens, jti)
		}
	}
}

// ValidDeviceToken reports whether token is a device JWT that deviceauth
// would accept for deviceID now (VerifyToken): signed by this Mender, not
// expired, still on record, and its auth set still accepted.
func (m *Mender) ValidDeviceToken(deviceID, token string) bool {
	payload, ok := verifyHS256(m.tokenKey, token)
	var c menderDeviceClaims
	if !ok || json.Unmarshal(payload, &c) != nil || !c.Device || c.Sub != deviceID {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.now().Before(time.Unix(c.Exp, 0)) || m.tokens[c.Jti] != deviceID {
		return false
	}
	d, i := m.authSet(c.Jti)
	return i >= 0 && d.id == deviceID && d.authSets[i].status == gatehouse.MenderAccepted
}

// verifyAuthSignature is VerifyAuthReqSign: RSA PKCS#1 v1.5 and ECDSA
// (ASN.1) over SHA-256 of the body, Ed25519 over the body itself, all
// base64 (standard alphabet).
func verifyAuthSignature(signature string, pub crypto.PublicKey, body []byte) error {
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(body)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest[:], sig) {
			return errBadSignature
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(k, body, sig) {
			return errBadSignature
		}
	default:
		return errBadSignature
	}
	return nil
}

var errBadSignature = &menderError{status: http.StatusUnauthorized, msg: "verification failed"}

// signHS256 makes a JWT. The simulator signs with HMAC, not Mender's RS256
// or Ed25519, since only the simulator itself verifies its JWTs.
func signHS256(key []byte, claims any) string {
	enc := base64.RawURLEncoding
	payload, _ := json.Marshal(claims)
	msg := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}

// verifyHS256 checks a JWT made by signHS256 and returns its payload.
func verifyHS256(key []byte, token string) ([]byte, bool) {
	msg, sig, ok := menderCutLast(token, ".")
	if !ok {
		return nil, false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	if got, err := base64.RawURLEncoding.DecodeString(sig); err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return nil, false
	}
	_, payload, _ := strings.Cut(msg, ".")
	b, err := base64.RawURLEncoding.DecodeString(payload)
	return b, err == nil
}
