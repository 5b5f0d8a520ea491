package manifest_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/deploy/manifests"
	"gatehouse/manifest"
)

// fuzzSecret stands for the registry password a manifest may hold. Errors
// name the file and a position or key path, never rendered contents, so no
// error may carry it.
const fuzzSecret = "registry-password-s3cr3t"

// maxManifest bounds what one render may produce: a template that loops
// (say {{range 1000000000}}) must fail, not exhaust memory.
const maxManifest = manifest.MaxRendered

var actions = regexp.MustCompile(`(?s)\{\{.*?\}\}`)

// FuzzManifestTemplate feeds arbitrary templates to the manifest loader
// and renders the ones it loads for arbitrary valid gateways. A template
// it loads renders, for any gateway, either an error or compact JSON of the
// required shape, no bigger than maxManifest, the same each time. Errors
// from loading and rendering name the template and never carry text the
// template would render (the registry password of the seeds).
func FuzzManifestTemplate(f *testing.F) {
	creds := `,"registryCredentials":{"acr":{"username":"u","password":"` + fuzzSecret + `","address":"a.example"}}`
	for _, src := range []string{
		minimal(""),
		minimal(`,"gw":{"properties.desired":{"name":{{json .Name}},"site":"{{label "site"}}","hub":"{{.Hub}}"}}`),
		minimal(`,"x":{"properties.desired":{"n":[{{range $i, $e := .Labels}}{{json $e}}{{end}}]}}`),
		minimal(`,"x":{"properties.desired":{"n":"{{range 3}}ab{{end}}"}}`),
		minimal(`,"x":{"properties.desired":{"p":"`+fuzzSecret+`"}}`) + "{{if .Labels.site}}x{{end}}",
		`{"modulesContent":{"$edgeAgent":{"properties.desired":{"schemaVersion":1.1` + creds + `}}}}`,
		`{"modulesContent":{"$edgeAgent":{"properties.desired":{"schemaVersion":"1.1"` + creds + `}},"$edgeHub":{}}}`,
		`{"modulesContent":{"p":"` + fuzzSecret + `",}}`,
		`{{define "a"}}{{template "a"}}{{end}}{{template "a"}}`,
		`{{.Nope}}`,
		string(manifests.IoTEdge15),
	} {
		f.Add([]byte(src), "gw-1", "plant-3")
	}
	f.Fuzz(func(t *testing.T, src []byte, name, site string) {
		set, err := manifest.FromBytes("fuzz.json", src)
		if err != nil {
			if set != nil {
				t.Fatalf("refused with %v but returned a set", err)
			}
			checkManifestError(t, err, src)
			return
		}
		if gatehouse.ValidateName(name) != nil || gatehouse.ValidateLabels(map[string]string{"site": site}) != nil {
			name, site = "gw-1", "plant-3" // gatehouse renders only valid names and labels
		}
		d := manifest.Data{Name: name, RegistrationID: name, Hub: "hub1.azure-devices.net", MAC: "02:00:00:00:00:01",
			DeviceID: name, Labels: map[string]string{"site": site}}
		out, err := set.Render(d)
		if err != nil {
			checkManifestError(t, err, src)
			return
		}
		checkManifest(t, out)
		if again, err := set.Render(d); err != nil || !bytes.Equal(again, out) {
			t.Fatalf("a second render differs (%v)", err)
		}
	})
}

func checkManifestError(t *testing.T, err error, src []byte) {
	t.Helper()
	msg := err.Error()
	if !strings.HasPrefix(msg, "manifest: ") || !strings.Contains(msg, "fuzz.json") {
		t.Fatalf("error %q does not name the template", msg)
	}
	// The secret counts only where the template renders it: inside an
	// action it is template code, which parse errors may quote.
	inAction := false
	for _, a := range actions.FindAll(src, -1) {
		inAction = inAction || bytes.Contains(a, []byte(fuzzSecret))
	}
	rendered := bytes.Contains(actions.ReplaceAll(src, nil), []byte(fuzzSecret))
	if rendered && !inAction && strings.Contains(msg, fuzzSecret) {
		t.Fatalf("error %q carries rendered text", msg)
	}
}

// checkManifest: compact JSON of the shape IoT Hub requires, bounded.
func checkManifest(t *testing.T, out []byte) {
	t.Helper()
	if len(out) > maxManifest {
		t.Fatalf("rendered %d bytes", len(out))
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, out); err != nil || !bytes.Equal(compact.Bytes(), out) {
		t.Fatalf("rendered manifest is not compact JSON: %v", err)
	}
	var doc struct {
		ModulesContent map[string]json.RawMessage `json:"modulesContent"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("rendered manifest has no modulesContent object: %v", err)
	}
	for _, twin := range []string{"$edgeAgent", "$edgeHub"} {
		var m struct {
			Desired *struct {
				SchemaVersion *string `json:"schemaVersion"`
			} `json:"properties.desired"`
		}
		if err := json.Unmarshal(doc.ModulesContent[twin], &m); err != nil || m.Desired == nil || m.Desired.SchemaVersion == nil {
			t.Fatalf("rendered manifest lacks %s's string schemaVersion (%v)", twin, err)
		}
	}
}
