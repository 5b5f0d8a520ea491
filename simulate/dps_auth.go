package simulate

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gatehouse/azure"
)

// sasPolicies verifies the SharedAccessSignature tokens DPS and IoT Hub
// accept: per host, named policies with base64 keys. Shared by DPSServer and
// HubServer.
type sasPolicies struct {
	keys map[string]map[string][]byte // lower-case host → policy → key
	now  func() time.Time
}

// newPolicy makes a connection string with a random 32-byte key for host,
// and registers it.
func (p *sasPolicies) newPolicy(host, policy string) azure.ConnectionString {
	var key [32]byte
	rand.Read(key[:])
	if p.keys == nil {
		p.keys = map[string]map[string][]byte{}
	}
	h := strings.ToLower(host)
	if p.keys[h] == nil {
		p.keys[h] = map[string][]byte{}
	}
	p.keys[h][policy] = key[:]
	return azure.ConnectionString{HostName: host, SharedAccessKeyName: policy,
		SharedAccessKey: base64.StdEncoding.EncodeToString(key[:])}
}

// verify checks r's Authorization header and returns the host its token is
// scoped to. Its errors say what is wrong without echoing the token.
func (p *sasPolicies) verify(r *http.Request) (string, error) {
	f, err := sasFields(r.Header.Get("Authorization"))
	if err != nil {
		return "", err
	}
	sr, err := url.QueryUnescape(f["sr"])
	if err != nil {
		return "", errors.New("malformed sr")
	}
	sr = strings.ToLower(sr)
	host, scope, _ := strings.Cut(sr, "/")
	policies, ok := p.keys[host]
	if !ok || !pathWithin(r.URL.Path, scope) {
		return "", errors.New("the token's resource (sr) is not this service")
	}
	key, ok := policies[f["skn"]]
	if !ok {
		return "", errors.New("unknown shared access policy (skn)")
	}
	if err := p.checkExpiry(f["se"]); err != nil {
		return "", err
	}
	return host, checkSignature(key, sr, f["se"], f["sig"])
}

// sasFields splits "SharedAccessSignature sr=…&sig=…&se=…&skn=…", fields in
// any order, values still URL-encoded.
func sasFields(header string) (map[string]string, error) {
	const scheme = "SharedAccessSignature "
	if !strings.HasPrefix(header, scheme) {
		return nil, errors.New("missing SharedAccessSignature authorization")
	}
	f := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(header, scheme), "&") {
		k, v, _ := strings.Cut(kv, "=")
		f[k] = v
	}
	for _, k := range []string{"sr", "sig", "se", "skn"} {
		if f[k] == "" {
			return nil, errors.New("SharedAccessSignature lacks " + k)
		}
	}
	return f, nil
}

// pathWithin applies the documented per-segment prefix match of a scoped
// token (sr = host/devices/x) to the request path.
func pathWithin(path, scope string) bool {
	if scope == "" {
		return true
	}
	path = strings.ToLower(strings.Trim(path, "/"))
	return path == scope || strings.HasPrefix(path, scope+"/")
}

func (p *sasPolicies) checkExpiry(se string) error {
	secs, err := strconv.ParseInt(se, 10, 64)
	if err != nil {
		return errors.New("malformed se")
	}
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	if !now().Before(time.Unix(secs, 0)) {
		return errors.New("the SAS token has expired")
	}
	return nil
}

func checkSignature(key []byte, sr, se, sig string) error {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(url.QueryEscape(sr) + "\n" + se))
	raw, err := url.QueryUnescape(sig)
	if err != nil {
		return errors.New("malformed sig")
	}
	got, err := base64.StdEncoding.DecodeString(raw)
	if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
		return errors.New("the signature does not match")
	}
	return nil
}
