package agent

import (
	_ "embed"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/template"
)

// defaultConfigToml is the built-in IoT Edge config.toml template.
//
//go:embed config.toml.tmpl
var defaultConfigToml string

// edgeConfig is what a config.toml template sees.
type edgeConfig struct {
	Name           string // the gateway's name
	IDScope        string
	RegistrationID string
	SymmetricKey   string // DPS primary key, base64
	GlobalEndpoint string
	// Attestation is "symmetric_key" or "x509"; x509 is chosen only when
	// the bundle has a certificate and its key is written.
	Attestation string
	// file:// URIs of the outputs on the gateway; "" when not written.
	IdentityCertURI, IdentityPKURI, CACertURI string
}

// sampleEdgeConfig exercises a template at start-up, so a broken template
// in the image fails the first run, not the first provisioned gateway.
var sampleEdgeConfig = edgeConfig{
	Name: "gw-sample", IDScope: "0ne00000000", RegistrationID: "gw-sample", SymmetricKey: "c2FtcGxl",
	GlobalEndpoint: DefaultDPSEndpoint, Attestation: AttestSymmetricKey,
	IdentityCertURI: "file:///x/device.crt", IdentityPKURI: "file:///x/device.key", CACertURI: "file:///x/ca.crt",
}

// loadEdgeTemplate parses the configured (or built-in) template and tries
// it once. Its errors carry ExitConfig.
func loadEdgeTemplate(c *Config) (*template.Template, error) {
	text, name := defaultConfigToml, "built-in config.toml template"
	if c.ConfigToml.Template != "" {
		data, err := os.ReadFile(c.hostPath(c.ConfigToml.Template))
		if err != nil {
			return nil, exitErrorf(ExitConfig, "config.toml template: %w", err)
		}
		text, name = string(data), c.ConfigToml.Template
	}
	t, err := template.New(name).Funcs(template.FuncMap{"toml": tomlString}).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, exitErrorf(ExitConfig, "config.toml template: %w", err)
	}
	if err := t.Execute(new(strings.Builder), sampleEdgeConfig); err != nil {
		return nil, exitErrorf(ExitConfig, "config.toml template %s: %w", name, err)
	}
	return t, nil
}

// renderEdgeConfig renders config.toml. The error never includes the
// rendered text, which holds the symmetric key.
func renderEdgeConfig(t *template.Template, d edgeConfig) ([]byte, error) {
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("render config.toml: %w", err)
	}
	return []byte(b.String()), nil
}

// fileURI is how IoT Edge names a file, as in identity_cert = "file:///...".
func fileURI(path string) string {
	if path == "" {
		return ""
	}
	return (&url.URL{Scheme: "file", Path: path}).String()
}

// tomlString quotes s as a TOML basic string. Values come from the server,
// so quotes, backslashes and control characters must not be able to end
// the string and inject settings.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
