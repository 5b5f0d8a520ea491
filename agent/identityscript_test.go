package agent

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mender-device-identity")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScriptMAC(t *testing.T) {
	ok := writeScript(t, "echo 'using interface /sys/class/net/eth0' >&2\necho cpuid=1234\necho mac=DC:A6:32:01:02:03\necho mac=02:00:00:00:00:02\n")
	if mac, err := scriptMAC(t.Context(), ok); err != nil || mac != "dc:a6:32:01:02:03" {
		t.Errorf("scriptMAC = %q, %v", mac, err)
	}
	for name, body := range map[string]string{
		"fails":     "echo 'no suitable interfaces found' >&2\nexit 1\n",
		"no mac":    "echo serial=42\n",
		"bad mac":   "echo mac=zz\n",
		"not there": "",
	} {
		t.Run(name, func(t *testing.T) {
			p := writeScript(t, body)
			if name == "not there" {
				p += "-missing"
			}
			_, err := scriptMAC(t.Context(), p)
			wantExit(t, err, ExitConfig, p)
			if name == "fails" {
				wantExit(t, err, ExitConfig, "no suitable interfaces found")
			}
		})
	}
}

func TestRunWithIdentityScript(t *testing.T) {
	f := newFakeServer(t)
	keyPath, _ := writeKey(t, "ed25519")
	cfg, _ := testConfig(t, f, keyPath)
	cfg.MAC, cfg.IdentityScript = "", writeScript(t, "echo mac=02:12:61:13:6c:42\n")
	b, secrets := testBundle()
	f.approveWhenEnrolled(t, t.Context(), b, secrets)
	if r := await(t, runAsync(t.Context(), cfg)); r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mac != "02:12:61:13:6c:42" {
		t.Errorf("enrolled MAC %s", f.mac)
	}
}

func TestOneMACSource(t *testing.T) {
	cfg := Config{Server: "https://x", MAC: "02:00:00:00:00:01", IdentityScript: "/x"}
	wantExit(t, cfg.Validate(), ExitConfig, "only one of")
}

// The agent must honour HTTPS_PROXY/HTTP_PROXY/NO_PROXY; the binary test
// goes through a real proxy, this checks the wiring.
func TestHTTPClientUsesEnvironmentProxy(t *testing.T) {
	tr, ok := NewHTTPClient().Transport.(*http.Transport)
	if !ok || tr.Proxy == nil {
		t.Fatal("transport has no proxy function")
	}
	if reflect.ValueOf(tr.Proxy).Pointer() != reflect.ValueOf(http.ProxyFromEnvironment).Pointer() {
		t.Error("transport does not take its proxy from the environment")
	}
}
