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
