package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func load(env map[string]string) (*Config, error) {
	e, _ := NewEnv(mapEnv(env), "")
	return Load(e)
}

func TestManifestErrorStopsStartup(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "manifest.json")
	os.WriteFile(broken, []byte(`{"modulesContent":{"$edgeAgent":{}}}`), 0o600)
	_, err := load(map[string]string{"GATEHOUSE_MANIFEST": broken})
	if err == nil || !strings.Contains(err.Error(), broken) {
		t.Fatalf("broken manifest: %v", err)
	}
	c, err := load(map[string]string{"GATEHOUSE_MANIFEST": "../deploy/manifests/iotedge-1.5.json"})
	if err != nil || c.Manifests == nil {
		t.Fatalf("sample manifest: %v", err)
	}
}

func TestWebhookSettings(t *testing.T) {
	c, err := load(map[string]string{"GATEHOUSE_WEBHOOK_URL": "https://hooks.example.com/x", "GATEHOUSE_WEBHOOK_SECRET": "0123456789abcdef"})
	if err != nil || c.Webhook == nil || c.Webhook.URL != "https://hooks.example.com/x" {
		t.Fatalf("webhook: %+v, %v", c, err)
	}
	for name, env := range map[string]map[string]string{
		"no secret":    {"GATEHOUSE_WEBHOOK_URL": "https://hooks.example.com/x"},
		"short secret": {"GATEHOUSE_WEBHOOK_URL": "https://hooks.example.com/x", "GATEHOUSE_WEBHOOK_SECRET": "short"},
		"no url":       {"GATEHOUSE_WEBHOOK_SECRET": "0123456789abcdef"},
		"bad url":      {"GATEHOUSE_WEBHOOK_URL": "ftp://x", "GATEHOUSE_WEBHOOK_SECRET": "0123456789abcdef"},
	} {
		_, err := load(env)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("%s: error shows the secret: %v", name, err)
		}
	}
}

func TestFollowDeadline(t *testing.T) {
	c, err := load(map[string]string{"GATEHOUSE_FOLLOW_DEADLINE": "36h"})
	if err != nil || c.FollowDeadline.Hours() != 36 {
		t.Fatalf("deadline: %v, %v", c, err)
	}
	if _, err := load(map[string]string{"GATEHOUSE_FOLLOW_DEADLINE": "soon"}); err == nil {
		t.Fatal("bad deadline accepted")
	}
}

func TestNothingConfigured(t *testing.T) {
	c, err := load(map[string]string{})
	if err != nil || c.Mender != nil || c.DPS != nil || c.Hubs != nil || c.Vault != nil || c.Webhook != nil || c.Manifests != nil {
		t.Fatalf("empty environment: %+v, %v", c, err)
	}
}

// A hub with more units, or DPS on a larger quota, is paced at the quota
// the operator states; a quota that is not a positive count stops startup.
func TestRateLimits(t *testing.T) {
	base := map[string]string{
		"GATEHOUSE_DPS_CONNECTION_STRING":     "HostName=dps.example;SharedAccessKeyName=p;SharedAccessKey=a2V5",
		"GATEHOUSE_DPS_ID_SCOPE":              "0ne00000001",
		"GATEHOUSE_IOTHUB_CONNECTION_STRINGS": "HostName=hub.example;SharedAccessKeyName=p;SharedAccessKey=a2V5",
	}
	c, err := load(base)
	if err != nil || c.DPS.RateLimit != 0 || c.Hubs.RateLimit != 0 {
		t.Fatalf("unset: %+v %+v %v (want 0, the clients' defaults)", c.DPS, c.Hubs, err)
	}
	base["GATEHOUSE_DPS_RATE_LIMIT"], base["GATEHOUSE_IOTHUB_RATE_LIMIT"] = "2000", "500"
	if c, err = load(base); err != nil || c.DPS.RateLimit != 2000 || c.Hubs.RateLimit != 500 {
		t.Fatalf("set: %v", err)
	}
	for _, bad := range []string{"0", "-5", "fast", "1e3"} {
		base["GATEHOUSE_IOTHUB_RATE_LIMIT"] = bad
		if _, err := load(base); err == nil || !strings.Contains(err.Error(), "GATEHOUSE_IOTHUB_RATE_LIMIT") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
