package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// tmpl is one parsed template file.
type tmpl struct {
	path string
	t    *template.Template
}

// loadFile parses the template at path and proves it with sample data, so a
// broken file stops the server at start-up rather than a gateway's follow-up
// job hours later. group is the sample "group" label.
func loadFile(path, group string) (*tmpl, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err // *PathError already names the file
	}
	return parse(path, group, src)
}

func parse(path, group string, src []byte) (*tmpl, error) {
	t, err := template.New(filepath.Base(path)).
		Option("missingkey=error").
		Funcs(funcs(nil)).
		Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tp := &tmpl{path: path, t: t}
	if _, err := tp.render(sampleData(group)); err != nil {
		return nil, fmt.Errorf("%s: rendered with sample data: %w", path, err)
	}
	return tp, nil
}

func sampleData(group string) Data {
	return Data{
		Name:           "sample-gateway",
		RegistrationID: "sample-gateway",
		Hub:            "sample-hub.azure-devices.net",
		MAC:            "02:00:00:00:00:01",
		DeviceID:       "sample-gateway",
		Labels:         map[string]string{GroupLabel: group},
	}
}

// funcs returns the template functions. label needs the gateway's labels,
// and template functions cannot see dot, so each render binds its own.
func funcs(labels map[string]string) template.FuncMap {
	return template.FuncMap{
		"json":  jsonLiteral,
		"label": func(key string) string { return labels[key] },
	}
}

// jsonLiteral leaves <, > and & unescaped: the output lands in a module twin,
// not in HTML, and should read as the operator wrote it.
func jsonLiteral(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// render executes the template for d and checks the manifest's shape. Its
// errors leave the file name to the caller, which knows the context.
func (t *tmpl) render(d Data) (json.RawMessage, error) {
	// Clone keeps the parsed tree shared and gives this render its own
	// function map, so concurrent renders never see each other's labels.
	exec, err := t.t.Clone()
	if err != nil {
		return nil, err
	}
	var buf cappedBuffer
	if err := exec.Funcs(funcs(d.Labels)).Execute(&buf, d); err != nil {
		return nil, err
	}
	if err := validate(buf.Bytes()); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, buf.Bytes()); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// MaxRendered bounds one rendered manifest. A deployment of a few modules
// takes kilobytes; a template that loops ({{range 1000000000}}) would
// otherwise fill memory at load time, when it renders with sample data.
const MaxRendered = 1 << 20

var errTooLarge = fmt.Errorf("rendered manifest exceeds %d bytes; does a {{range}} loop run away?", MaxRendered)

// cappedBuffer refuses to grow past MaxRendered.
type cappedBuffer struct{ bytes.Buffer }

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > MaxRendered {
		return 0, errTooLarge
	}
	return b.Buffer.Write(p)
}
