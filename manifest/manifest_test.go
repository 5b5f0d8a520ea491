package manifest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"gatehouse/manifest"
)

const samplePath = "../deploy/manifests/iotedge-1.5.json"

// minimal returns a valid template with extra inserted into modulesContent,
// so tests can vary one thing at a time.
func minimal(extra string) string {
	return `{
  "modulesContent": {
    "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1"}},
    "$edgeHub": {"properties.desired": {"schemaVersion": "1.1", "routes": {}}}` + extra + `
  }
}
`
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustLoad(t *testing.T, defaultPath, groupsDir string) *manifest.Set {
	t.Helper()
	s, err := manifest.Load(defaultPath, groupsDir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func gateway(labels map[string]string) manifest.Data {
	return manifest.Data{
		Name:           "gw-01",
		RegistrationID: "gw-01-reg",
		Hub:            "hub1.azure-devices.net",
		MAC:            "02:42:ac:11:00:02",
		DeviceID:       "gw-01-dev",
		Labels:         labels,
	}
}

// sampleManifest mirrors the parts of the sample the tests look at.
type sampleManifest struct {
	ModulesContent struct {
		EdgeAgent struct {
			Desired struct {
				SchemaVersion string `json:"schemaVersion"`
				SystemModules map[string]struct {
					Settings struct{ Image, CreateOptions string }
				} `json:"systemModules"`
				Modules map[string]struct {
					Status, RestartPolicy string
					Settings              struct{ Image, CreateOptions string }
					Env                   map[string]struct{ Value string }
				} `json:"modules"`
			} `json:"properties.desired"`
		} `json:"$edgeAgent"`
		EdgeHub struct {
			Desired struct {
				SchemaVersion string            `json:"schemaVersion"`
				Routes        map[string]string `json:"routes"`
				StoreAndFwd   struct {
					TimeToLiveSecs int `json:"timeToLiveSecs"`
				} `json:"storeAndForwardConfiguration"`
			} `json:"properties.desired"`
		} `json:"$edgeHub"`
		GatewayLink struct {
			Desired struct{ GatewayName, Site string } `json:"properties.desired"`
		} `json:"gateway-link"`
	} `json:"modulesContent"`
}

func renderSample(t *testing.T, labels map[string]string) sampleManifest {
	t.Helper()
	out, err := mustLoad(t, samplePath, "").Render(gateway(labels))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	var m sampleManifest
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("rendered sample: %v", err)
	}
	return m
}

func TestSample(t *testing.T) {
	m := renderSample(t, map[string]string{"site": "plant-3"})
	agent, hub := m.ModulesContent.EdgeAgent.Desired, m.ModulesContent.EdgeHub.Desired
	link := agent.Modules["gateway-link"]
	checks := []struct{ name, got, want string }{
		{"agent schemaVersion", agent.SchemaVersion, "1.1"},
		{"hub schemaVersion", hub.SchemaVersion, "1.1"},
		{"edgeAgent image", agent.SystemModules["edgeAgent"].Settings.Image, "mcr.microsoft.com/azureiotedge-agent:1.5"},
		{"edgeHub image", agent.SystemModules["edgeHub"].Settings.Image, "mcr.microsoft.com/azureiotedge-hub:1.5"},
		{"module image", link.Settings.Image, "example.azurecr.io/gateway-link:1.0"},
		{"module status", link.Status, "running"},
		{"module restartPolicy", link.RestartPolicy, "always"},
		{"GATEWAY_NAME", link.Env["GATEWAY_NAME"].Value, "gw-01"},
		{"DPS_REGISTRATION_ID", link.Env["DPS_REGISTRATION_ID"].Value, "gw-01-reg"},
		{"IOTHUB", link.Env["IOTHUB"].Value, "hub1.azure-devices.net"},
		{"twin gatewayName", m.ModulesContent.GatewayLink.Desired.GatewayName, "gw-01"},
		{"twin site", m.ModulesContent.GatewayLink.Desired.Site, "plant-3"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if hub.StoreAndFwd.TimeToLiveSecs != 7200 {
		t.Errorf("timeToLiveSecs = %d, want 7200", hub.StoreAndFwd.TimeToLiveSecs)
	}
	if len(hub.Routes) != 1 || !strings.Contains(hub.Routes["gatewayLinkToUpstream"], "gateway-link") ||
		!strings.HasSuffix(hub.Routes["gatewayLinkToUpstream"], "INTO $upstream") {
		t.Errorf("routes = %v, want one route from gateway-link to $upstream", hub.Routes)
	}
}

// createOptions is a JSON document inside a JSON string; IoT Edge rejects
// an object there.
func TestSampleCreateOptionsAreStringifiedJSON(t *testing.T) {
	m := renderSample(t, nil)
	agent := m.ModulesContent.EdgeAgent.Desired
	all := map[string]string{"gateway-link": agent.Modules["gateway-link"].Settings.CreateOptions}
	for name, sm := range agent.SystemModules {
		all[name] = sm.Settings.CreateOptions
	}
	for name, opts := range all {
		if !json.Valid([]byte(opts)) {
			t.Errorf("%s createOptions %q is not JSON", name, opts)
		}
	}
}

func TestSampleWithoutSiteLabel(t *testing.T) {
	m := renderSample(t, nil)
	if got := m.ModulesContent.GatewayLink.Desired.Site; got != "" {
		t.Errorf("site = %q, want empty", got)
	}
}

func TestRenderIsCompact(t *testing.T) {
	out, err := mustLoad(t, samplePath, "").Render(gateway(nil))
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, compact.Bytes()) {
		t.Errorf("output is not compact:\n%s", out)
	}
}

func TestJSONHelperKeepsQuotedLabelValid(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "m.json", minimal(`,
    "mod": {"properties.desired": {"site": {{json (label "site")}}, "name": {{json .Name}}}}`))
	site := `plant "3" \ <north> & co`
	out, err := mustLoad(t, path, "").Render(gateway(map[string]string{"site": site}))
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	var m struct {
		ModulesContent struct {
			Mod struct {
				Desired struct{ Site, Name string } `json:"properties.desired"`
			} `json:"mod"`
		} `json:"modulesContent"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("output is not valid JSON: %v\n%s", err, out)
	}
	if got := m.ModulesContent.Mod.Desired.Site; got != site {
		t.Errorf("site = %q, want %q", got, site)
	}
	if !bytes.Contains(out, []byte("<north> & co")) {
		t.Errorf("json escaped HTML characters: %s", out)
	}
}

// Raw insertion of an unvalidated value is caught at render time rather than
// sent to IoT Hub.
func TestRawInsertionOfQuoteFailsRender(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "m.json", minimal(`,
    "mod": {"properties.desired": {"name": "{{.Name}}"}}`))
	d := gateway(nil)
	d.Name = `gw"01`
	_, err := mustLoad(t, path, "").Render(d)
	if err == nil || !strings.Contains(err.Error(), "invalid JSON at line 5") ||
		!strings.Contains(err.Error(), path) {
		t.Errorf("Render error = %v, want invalid JSON at line 5 naming %s", err, path)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string
	}{
		{"trailing comma", `{
  "modulesContent": {
    "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1"}},
    "$edgeHub": {"properties.desired": {"schemaVersion": "1.1",}}
  }
}`, []string{"invalid JSON at line 4, column 64", "invalid character '}'"}},
		{"empty file", "", []string{"invalid JSON at line 1, column 1", "unexpected end"}},
		{"not an object", `[]`, []string{"must be a JSON object, not an array"}},
		{"no modulesContent", `{"modules": {}}`, []string{".modulesContent is missing"}},
		{"missing edgeHub", `{"modulesContent": {"$edgeAgent": {"properties.desired": {"schemaVersion": "1.1"}}}}`,
			[]string{`.modulesContent["$edgeHub"] is missing`}},
		{"edgeAgent not object", `{"modulesContent": {"$edgeAgent": [], "$edgeHub": {}}}`,
			[]string{`.modulesContent["$edgeAgent"] must be a JSON object, not an array`}},
		{"missing properties.desired", `{"modulesContent": {
  "$edgeAgent": {"properties.desired": {"schemaVersion": "1.1"}},
  "$edgeHub": {"properties": {"desired": {"schemaVersion": "1.1"}}}}}`,
			[]string{`.modulesContent["$edgeHub"]["properties.desired"] is missing`}},
		{"missing schemaVersion", `{"modulesContent": {
  "$edgeAgent": {"properties.desired": {"runtime": {}}},
  "$edgeHub": {"properties.desired": {"schemaVersion": "1.1"}}}}`,
			[]string{`.modulesContent["$edgeAgent"]["properties.desired"].schemaVersion is missing`}},
		{"numeric schemaVersion", `{"modulesContent": {
  "$edgeAgent": {"properties.desired": {"schemaVersion": 1.1}},
  "$edgeHub": {"properties.desired": {"schemaVersion": "1.1"}}}}`,
			[]string{"schemaVersion must be a string", "not a number"}},
		{"template syntax", minimal(`, "x": {{json .Name}`), []string{"template: bad.json:4: bad character"}},
		{"unknown function", minimal(`, "x": {{nope}}`), []string{`function "nope" not defined`}},
		{"unknown field", minimal(`, "x": {{json .Nope}}`), []string{"with sample data", "can't evaluate field Nope"}},
		{"label via map key", minimal(`, "x": {{json .Labels.site}}`), []string{`map has no entry for key "site"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "bad.json", tt.content)
			_, err := manifest.Load(path, "")
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, want := range append(tt.want, "manifest: "+path+": ") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}

func TestLoadNeedsATemplate(t *testing.T) {
	if _, err := manifest.Load("", ""); err == nil {
		t.Error("Load(\"\", \"\") succeeded")
	}
	empty := t.TempDir()
	if _, err := manifest.Load("", empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("Load of empty groups dir: err = %v, want one naming %s", err, empty)
	}
	missing := filepath.Join(empty, "nope.json")
	if _, err := manifest.Load(missing, ""); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load of missing file: err = %v, want one naming it", err)
	}
}

// marked is a valid template whose output says which file produced it.
func marked(name string) string {
	return minimal(fmt.Sprintf(`, "mod": {"properties.desired": {"from": %q, "group": {{json (label "group")}}}}`, name))
}

func renderedFrom(t *testing.T, s *manifest.Set, labels map[string]string) string {
	t.Helper()
	out, err := s.Render(gateway(labels))
	if err != nil {
		t.Fatalf("Render(%v): %v", labels, err)
	}
	var m struct {
		ModulesContent struct {
			Mod struct {
				Desired struct{ From string } `json:"properties.desired"`
			} `json:"mod"`
		} `json:"modulesContent"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m.ModulesContent.Mod.Desired.From
}

func groupsDir(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, dir, "a.json", marked("a"))
	writeFile(t, dir, "b.json", marked("b"))
	writeFile(t, dir, "notes.txt", "not a template")
	writeFile(t, dir, "._a.json", "\x00\x05 resource fork litter")
	return dir
}

func TestGroupSelection(t *testing.T) {
	dir := groupsDir(t)
	def := writeFile(t, t.TempDir(), "default.json", marked("default"))
	s := mustLoad(t, def, dir)
	if got, want := s.Groups(), []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("Groups() = %v, want %v", got, want)
	}
	cases := []struct {
		labels map[string]string
		want   string
	}{
		{map[string]string{"group": "a"}, "a"},
		{map[string]string{"group": "b", "site": "x"}, "b"},
		{map[string]string{"group": "zzz"}, "default"},
		{map[string]string{"site": "x"}, "default"},
		{nil, "default"},
	}
	for _, c := range cases {
		if got := renderedFrom(t, s, c.labels); got != c.want {
			t.Errorf("labels %v: rendered from %q, want %q", c.labels, got, c.want)
		}
	}
}

func TestGroupWithoutDefault(t *testing.T) {
	s := mustLoad(t, "", groupsDir(t))
	if got := renderedFrom(t, s, map[string]string{"group": "a"}); got != "a" {
		t.Errorf("rendered from %q, want a", got)
	}
	_, err := s.Render(gateway(map[string]string{"group": "zzz"}))
	if !errors.Is(err, manifest.ErrNoTemplate) || !strings.Contains(err.Error(), `group "zzz"`) {
		t.Errorf("unknown group: err = %v, want ErrNoTemplate naming group \"zzz\"", err)
	}
	_, err = s.Render(gateway(nil))
	if !errors.Is(err, manifest.ErrNoTemplate) || !strings.Contains(err.Error(), `no "group" label`) {
		t.Errorf("no group label: err = %v, want ErrNoTemplate about the missing label", err)
	}
}

func TestBadGroupFileFailsLoad(t *testing.T) {
	dir := groupsDir(t)
	bad := writeFile(t, dir, "c.json", minimal(`, "x": {{.Nope}}`))
	_, err := manifest.Load("", dir)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("err = %v, want one naming %s", err, bad)
	}
}

func TestStringHasNoContents(t *testing.T) {
	dir := groupsDir(t)
	s := mustLoad(t, samplePath, dir)
	got := s.String()
	for _, want := range []string{samplePath, dir, "[a b]"} {
		if !strings.Contains(got, want) {
			t.Errorf("String() = %q, want it to mention %q", got, want)
		}
	}
	if strings.Contains(got, "modulesContent") || strings.Contains(got, "azureiotedge") {
		t.Errorf("String() leaks template contents: %q", got)
	}
}

// Each render binds its own label function; run under -race.
func TestConcurrentRenders(t *testing.T) {
	s := mustLoad(t, samplePath, "")
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			site := fmt.Sprintf("site-%d", i)
			out, err := s.Render(gateway(map[string]string{"site": site}))
			if err != nil {
				t.Error(err)
				return
			}
			if !bytes.Contains(out, []byte(`"site":"`+site+`"`)) {
				t.Errorf("render %d lost its label: %s", i, out)
			}
		})
	}
	wg.Wait()
}

func TestFromBytes(t *testing.T) {
	src, err := os.ReadFile("../deploy/manifests/iotedge-1.5.json")
	if err != nil {
		t.Fatal(err)
	}
	s, err := manifest.FromBytes("iotedge-1.5.json", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Render(manifest.Data{Name: "gw-01", RegistrationID: "gw-01", Hub: "h.azure-devices.net", MAC: "02:00:00:00:00:01", DeviceID: "gw-01"}); err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.FromBytes("broken.json", []byte(`{"modulesContent":{}}`)); err == nil || !strings.Contains(err.Error(), "broken.json") {
		t.Fatalf("broken template: %v", err)
	}
}
