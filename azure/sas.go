// Package azure holds gatehouse's clients for the Azure IoT Hub Device
// Provisioning Service and IoT Hub service APIs, authenticated with shared
// access signatures.
package azure

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ConnectionString is a service connection string of a DPS instance or an
// IoT Hub: the host and one shared access policy.
type ConnectionString struct {
	HostName            string
	SharedAccessKeyName string
	SharedAccessKey     string // base64
}

// String masks the key, so a connection string printed by mistake leaks
// nothing.
func (c ConnectionString) String() string {
	key := ""
	if c.SharedAccessKey != "" {
		key = "REDACTED"
	}
	return "HostName=" + c.HostName + ";SharedAccessKeyName=" + c.SharedAccessKeyName + ";SharedAccessKey=" + key
}

// GoString masks the key for %#v as well.
func (c ConnectionString) GoString() string {
	return fmt.Sprintf("azure.ConnectionString{%q}", c.String())
}

// ParseConnectionString parses "HostName=…;SharedAccessKeyName=…;SharedAccessKey=…".
// Its errors name the offending field but never repeat the input, which
// holds the key.
func ParseConnectionString(s string) (ConnectionString, error) {
	fields, err := connectionFields(s)
	if err != nil {
		return ConnectionString{}, err
	}
	if _, ok := fields["deviceid"]; ok {
		return ConnectionString{}, errors.New("azure: connection string: this is a device connection string (it has DeviceId); use a service policy's connection string")
	}
	c := ConnectionString{
		HostName:            fields["hostname"],
		SharedAccessKeyName: fields["sharedaccesskeyname"],
		SharedAccessKey:     fields["sharedaccesskey"],
	}
	if err := c.Validate(); err != nil {
		return ConnectionString{}, err
	}
	return c, nil
}

// connectionFields splits the string into lower-cased names and values. A
// value may itself contain '=' (base64 padding), so only the first one splits.
func connectionFields(s string) (map[string]string, error) {
	fields := map[string]string{}
	for i, part := range strings.Split(strings.TrimSpace(s), ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("azure: connection string: part %d is not Name=Value", i+1)
		}
		name = strings.ToLower(strings.TrimSpace(name))
		if _, dup := fields[name]; dup {
			return nil, fmt.Errorf("azure: connection string: part %d repeats an earlier name", i+1)
		}
		fields[name] = strings.TrimSpace(value)
	}
	return fields, nil
}

// Validate checks that every field is present and the key is base64.
func (c ConnectionString) Validate() error {
	switch {
	case c.HostName == "":
		return errors.New("azure: connection string: missing HostName")
	case strings.ContainsAny(c.HostName, "/:@ "):
		return fmt.Errorf("azure: connection string: HostName %q must be a bare host name", c.HostName)
	case c.SharedAccessKeyName == "":
		return errors.New("azure: connection string: missing SharedAccessKeyName")
	case c.SharedAccessKey == "":
		return errors.New("azure: connection string: missing SharedAccessKey")
	}
	if _, err := base64.StdEncoding.DecodeString(c.SharedAccessKey); err != nil {
		return errors.New("azure: connection string: SharedAccessKey is not valid base64")
	}
	return nil
}

// SASToken returns an Authorization header value for resourceURI (for the
// service APIs, the bare host name), signed with the base64 policy key and
// valid until expiry.
func SASToken(resourceURI, policy, key string, expiry time.Time) (string, error) {
	if resourceURI == "" || policy == "" {
		return "", errors.New("azure: SAS token needs a resource URI and a policy name")
	}
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(k) == 0 {
		return "", errors.New("azure: SAS token: shared access key is not valid base64")
	}
	sr := url.QueryEscape(strings.ToLower(resourceURI))
	se := strconv.FormatInt(expiry.Unix(), 10)
	mac := hmac.New(sha256.New, k)
	mac.Write([]byte(sr + "\n" + se))
	sig := url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	// Policy names are plain words; escaping only guards the header's syntax.
	return "SharedAccessSignature sr=" + sr + "&sig=" + sig + "&se=" + se + "&skn=" + url.QueryEscape(policy), nil
}

// Token lifetime: an hour, renewed once 80 % of it has passed, so a token
// is never used within 12 minutes of its expiry despite clock drift.
const (
	tokenValidity = time.Hour
	tokenRenewal  = tokenValidity * 8 / 10
)

// signer caches one SAS token per connection string.
type signer struct {
	cs  ConnectionString
	now func() time.Time

	mu      sync.Mutex
	token   string
	renewAt time.Time
}

func newSigner(cs ConnectionString) *signer {
	return &signer{cs: cs, now: time.Now}
}

// get returns the cached token, or signs a new one when it is due.
func (s *signer) get() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && now.Before(s.renewAt) {
		return s.token, nil
	}
	tok, err := SASToken(s.cs.HostName, s.cs.SharedAccessKeyName, s.cs.SharedAccessKey, now.Add(tokenValidity))
	if err != nil {
		return "", err
	}
	s.token, s.renewAt = tok, now.Add(tokenRenewal)
	return tok, nil
}

// reset drops the cached token: the service refused it, perhaps because its
// clock is ahead of ours.
func (s *signer) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = ""
}

// auth is a rest.Client Auth hook.
func (s *signer) auth(_ context.Context, req *http.Request) error {
	tok, err := s.get()
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", tok)
	return nil
}
