package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/provision"
	"gatehouse/sandbox"
	"gatehouse/simulate"
)

// TestEndToEnd runs the real server on :0 with simulated backends, runs the
// agent code against it, approves through the REST API and checks the files
// the agent wrote.
func TestEndToEnd(t *testing.T) {
	// No deadline on the whole test: every wait below has its own.
	ctx := context.Background()
	dir := t.TempDir()
	sims, err := sandbox.Start(200 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer sims.Close()
	cfg, err := appFromConfig(sims.Config())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.DB = "127.0.0.1:0", filepath.Join(dir, "gatehouse.db")
	cfg.Jobs.FollowPollMin = 50 * time.Millisecond
	a, err := startApp(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	token, _, err := a.svc.CreateToken(ctx, provision.TokenSpec{Name: "e2e", Role: gatehouse.RoleOperator})
	if err != nil {
		t.Fatal(err)
	}
	keyPath, out := filepath.Join(dir, "mender-agent.pem"), filepath.Join(dir, "out")
	key := writeEd25519Key(t, keyPath)

	// The real order: the gateway's Mender client asks Mender first, so
	// Mender holds the gateway pending before anyone approves it.
	mc, err := sims.MenderClient(key, "02:00:00:00:00:aa", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	mcCtx, stopMC := context.WithCancel(ctx)
	defer stopMC()
	go mc.Run(mcCtx)
	first, cancelFirst := context.WithTimeout(ctx, 20*time.Second)
	defer cancelFirst()
	if err := mc.WaitAttempts(first, 1); err != nil || mc.Token() != "" {
		t.Fatalf("the Mender client's first auth request: %v (token %q)", err, mc.Token())
	}

	type result struct {
		res *agent.Result
		err error
	}
	done := make(chan result, 1)
	agentCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent() // before the app closes, so its long poll ends
	go func() {
		res, err := agent.Run(agentCtx, agent.Config{Server: a.server.URL(), InsecureHTTP: true, KeyPath: keyPath, OutDir: out,
			MAC: "02:00:00:00:00:aa", RestartCommands: []string{}})
		done <- result{res, err}
	}()
	id := waitForN(t, a.svc, 1)[0]
	approve(t, a.server.URL(), token, id, "gw-e2e")
	var r result
	select {
	case r = <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("the agent did not finish within %v of the approval", waitTimeout)
	}
	if r.err != nil {
		t.Fatalf("agent: %v", r.err)
	}
	checkFiles(t, out, "gw-e2e")
	d, err := a.svc.Device(ctx, id)
	if err != nil || d.State != gatehouse.StateProvisioned {
		t.Fatalf("device after agent finished: %+v %v", d, err)
	}
	if sims.Mender.State.Len() != 1 || sims.DPS.State.Len() != 1 || sims.Vault.State.Len() != 1 {
		t.Fatalf("backend objects: mender %d, dps %d, vault %d; want one each",
			sims.Mender.State.Len(), sims.DPS.State.Len(), sims.Vault.State.Len())
	}
	checkMenderConnected(t, ctx, sims, mc, "gw-e2e")

	// IoT Edge registers with what the agent wrote; DPS assigns the gateway
	// to a hub and gatehouse applies the manifest there.
	registerLikeIoTEdge(agent.Config{OutDir: out, Logger: quiet}, sims)
	if !eventually(waitTimeout, func() bool {
		d, err = a.svc.Device(ctx, id)
		return err == nil && d.State == gatehouse.StateConfigured
	}) {
		t.Fatalf("not configured within %v: %+v %v", waitTimeout, d, err)
	}
	hub := sims.Hub.State.Hubs()[0]
	if m, ok := sims.Hub.State.Configuration(hub, "gw-e2e"); !ok || !strings.Contains(string(m), "azureiotedge-agent:1.5") {
		t.Fatalf("manifest in the hub: %s (%v)", m, ok)
	}
}

// checkMenderConnected is the seed's promise: the gateway "will be able to
// successfully connect to the Mender server from now on". Its Mender
// client holds a device token, and inventory holds the name tag.
func checkMenderConnected(t *testing.T, ctx context.Context, sims *sandbox.Simulators, mc *simulate.MenderClient, name string) {
	t.Helper()
	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := mc.WaitAccepted(wait); err != nil {
		t.Fatalf("the gateway's Mender client never got a token (last answer %d after %d attempts): %v", mc.LastStatus(), mc.Attempts(), err)
	}
	dev := sims.Mender.State.Devices()[0]
	if !sims.Mender.State.ValidDeviceToken(dev.ID, mc.Token()) || dev.Status != gatehouse.MenderAccepted {
		t.Errorf("mender device %+v does not accept the client's token", dev)
	}
	if tags := sims.Mender.State.TagsOf(dev.ID); tags["name"] != name {
		t.Errorf("inventory tags %v, want name %s", tags, name)
	}
}

func writeEd25519Key(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

func approve(t *testing.T, url, token, id, name string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name})
	req, _ := http.NewRequest("POST", url+"/api/v1/devices/"+id+"/approve", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("approve: %s", resp.Status)
	}
}

func checkFiles(t *testing.T, out, name string) {
	t.Helper()
	read := func(f string) string {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("device-name"); got != name+"\n" {
		t.Errorf("device-name = %q", got)
	}
	env := read("iotedge.env")
	for _, want := range []string{"DEVICE_NAME=" + name, "DPS_REGISTRATION_ID=" + name, "DPS_ID_SCOPE=", "DPS_SYMMETRIC_KEY="} {
		if !strings.Contains(env, want) {
			t.Errorf("iotedge.env lacks %q", want)
		}
	}
	if _, err := tls.X509KeyPair([]byte(read("device.crt")), []byte(read("device.key"))); err != nil {
		t.Errorf("device.crt and device.key do not match: %v", err)
	}
	if !strings.Contains(read("ca.crt"), "BEGIN CERTIFICATE") {
		t.Error("ca.crt holds no certificate")
	}
	for _, f := range []string{"device.key", "iotedge.env"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode = %v (%v), want 0600", f, fi.Mode().Perm(), err)
		}
	}
}
