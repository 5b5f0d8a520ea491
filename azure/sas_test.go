package azure

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testKey is base64 of the bytes 0..31.
const testKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func TestSASTokenKnownAnswer(t *testing.T) {
	expiry := time.Unix(1456973447, 0)
	got, err := SASToken("MyHub.azure-devices.net/devices/gw-01", "enrollmentread", testKey, expiry)
	if err != nil {
		t.Fatal(err)
	}

	// The documented algorithm, step by step, without the code under test:
	// sr is the lower-cased resource URI, URL-encoded ('/' → %2F).
	sr := "myhub.azure-devices.net%2Fdevices%2Fgw-01"
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(sr + "\n" + "1456973447"))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	sig = strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D").Replace(sig)
	want := "SharedAccessSignature sr=" + sr + "&sig=" + sig + "&se=1456973447&skn=enrollmentread"
	if got != want {
		t.Errorf("SASToken =\n%s\nwant\n%s", got, want)
	}
	// Computed once with Python's hmac/base64/urllib as a third opinion; it
	// has '+', '/' and '=' in it, so every escape is exercised.
	const python = "LzBmY1Gomwiw96QWS%2BmaKsBJ%2FA8mubipYMNY5a9w9gQ%3D"
	if !strings.Contains(got, "&sig="+python+"&") {
		t.Errorf("signature differs from the reference value %s", python)
	}
}

func TestSASTokenHostOnly(t *testing.T) {
	got, err := SASToken("mydps.azure-devices-provisioning.net", "provisioningserviceowner", testKey, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "SharedAccessSignature sr=mydps.azure-devices-provisioning.net&sig=") ||
		!strings.HasSuffix(got, "&se=1700000000&skn=provisioningserviceowner") {
		t.Errorf("token = %s", got)
	}
}

func TestSASTokenErrors(t *testing.T) {
	secret := "not-base64-but-secret!"
	tests := map[string][3]string{
		"BadKey":   {"h.azure-devices.net", "p", secret},
		"EmptyKey": {"h.azure-devices.net", "p", ""},
		"NoPolicy": {"h.azure-devices.net", "", testKey},
		"NoURI":    {"", "p", testKey},
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := SASToken(in[0], in[1], in[2], time.Now())
			if err == nil {
				t.Fatal("no error")
			}
			if in[2] != "" && strings.Contains(err.Error(), in[2]) {
				t.Errorf("error %q contains the key", err)
			}
		})
	}
}

func TestParseConnectionString(t *testing.T) {
	s := " HostName=mydps.azure-devices-provisioning.net; sharedaccesskeyname=provisioningserviceowner;SharedAccessKey=" + testKey + ";"
	got, err := ParseConnectionString(s)
	if err != nil {
		t.Fatal(err)
	}
	want := ConnectionString{HostName: "mydps.azure-devices-provisioning.net", SharedAccessKeyName: "provisioningserviceowner", SharedAccessKey: testKey}
	if got != want {
		t.Errorf("ParseConnectionString = %#v, want %#v", got, want)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(format, got); strings.Contains(out, testKey) || !strings.Contains(out, "REDACTED") {
			t.Errorf("Sprintf(%q) = %s, want the key redacted", format, out)
		}
	}
}

func TestParseConnectionStringErrors(t *testing.T) {
	key := "c2VjcmV0LWtleS1tYXRlcmlhbC1kby1ub3QtbGVhaw=="
	tests := map[string]string{
		"Empty":        "",
		"NoHost":       "SharedAccessKeyName=p;SharedAccessKey=" + key,
		"NoPolicy":     "HostName=h.azure-devices.net;SharedAccessKey=" + key,
		"NoKey":        "HostName=h.azure-devices.net;SharedAccessKeyName=p",
		"NotPairs":     "HostName=h.azure-devices.net;SharedAccessKeyName=p;" + key,
		"Twice":        "HostName=h.azure-devices.net;SharedAccessKeyName=p;SharedAccessKey=" + key + ";SharedAccessKey=" + key,
		"DeviceString": "HostName=h.azure-devices.net;DeviceId=gw-01;SharedAccessKey=" + key,
		"KeyNotBase64": "HostName=h.azure-devices.net;SharedAccessKeyName=p;SharedAccessKey=" + key[:10] + "!!",
		"HostIsURL":    "HostName=https://h.azure-devices.net;SharedAccessKeyName=p;SharedAccessKey=" + key,
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := ParseConnectionString(s)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), key[:10]) {
				t.Errorf("error %q leaks the key", err)
			}
			if !strings.HasPrefix(err.Error(), "azure: connection string: ") {
				t.Errorf("error %q lacks its prefix", err)
			}
		})
	}
}

func TestSignerRenewsBeforeExpiry(t *testing.T) {
	now := time.Unix(1700000000, 0)
	s := newSigner(ConnectionString{HostName: "h.azure-devices.net", SharedAccessKeyName: "p", SharedAccessKey: testKey})
	s.now = func() time.Time { return now }
	first, err := s.get()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first, "&se=1700003600&") {
		t.Errorf("token %s does not expire in an hour", first)
	}
	now = now.Add(47 * time.Minute)
	if again, _ := s.get(); again != first {
		t.Errorf("token renewed at 47 min, want it cached until 48")
	}
	now = now.Add(2 * time.Minute)
	renewed, _ := s.get()
	if renewed == first || !strings.Contains(renewed, "&se=1700006540&") {
		t.Errorf("token at 49 min = %s, want a new one valid for an hour", renewed)
	}
	s.reset()
	now = now.Add(time.Second)
	if after, _ := s.get(); after == renewed {
		t.Errorf("reset kept the refused token")
	}
}
