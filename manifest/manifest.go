// Package manifest renders Azure IoT Edge deployment manifests per gateway.
//
// A manifest is the body gatehouse sends to IoT Hub's applyConfigurationContent
// once a gateway has been assigned to a hub: {"modulesContent": {...}}. It is
// written as a Go text/template so that one file serves the whole fleet.
//
// # Files
//
// A Set holds a default template (for example
// deploy/manifests/iotedge-1.5.json) and, optionally, a directory of group
// templates named <group>.json. The gateway label "group" picks a group
// template; a gateway without that label, or whose group has no file, gets
// the default. Files in the directory whose names start with "." are ignored,
// so editor and OS litter cannot break a deployment.
//
// # Template variables and functions
//
//	.Name            gateway name (also Mender tag and certificate CN)
//	.RegistrationID  DPS registration id
//	.Hub             IoT Hub host DPS assigned, e.g. "hub1.azure-devices.net"
//	.MAC             MAC address of the identity interface
//	.DeviceID        IoT Hub device id
//	.Labels          gateway labels (map[string]string)
//	json VALUE       VALUE as a JSON literal: {{json .Name}} gives "gw-01",
//	                 quotes included
//	label "KEY"      the value of label KEY, or "" when the gateway lacks it
//
// text/template does not escape anything, so a value written inside a JSON
// string ("{{.Name}}") must not contain quotes, backslashes or control
// characters. gatehouse validates names, MACs, hubs and labels so they do
// not, but {{json .Name}} (without surrounding quotes) stays correct whatever
// the value is and is the robust choice.
//
// Templates run with missingkey=error. Referring to a field Data lacks
// ({{.Nope}}) therefore fails when the Set is loaded. So does {{.Labels.site}}
// unless every gateway is sure to carry that label, because the check renders
// with sample data whose only label is "group". Use {{label "site"}} for
// optional labels; {{index .Labels "site"}} also yields "" but reads less
// clearly.
//
// # Validation
//
// Each template is rendered with sample data at load time and every manifest
// again at render time (a branch the sample data did not take may still be
// broken). The result must be JSON with an object modulesContent holding
// objects $edgeAgent and $edgeHub, each with an object "properties.desired"
// (one key, dot included) holding a string schemaVersion. Errors name the file
// and the position or key path, never the rendered contents: a manifest may
// hold container registry credentials.
package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Data is what a template may use.
type Data struct {
	Name           string
	RegistrationID string
	Hub            string
	MAC            string
	DeviceID       string
	Labels         map[string]string
}

// GroupLabel is the gateway label that selects a group template.
const GroupLabel = "group"

// ErrNoTemplate is wrapped by Render when neither a group template nor a
// default template fits the gateway, so callers can report a configuration
// problem instead of retrying.
var ErrNoTemplate = errors.New("no manifest template")

// Set is a loaded, validated collection of manifest templates. It is safe for
// concurrent use.
type Set struct {
	def    *tmpl // nil when only group templates exist
	groups map[string]*tmpl
	dir    string
}

// Load reads and validates the default template at defaultPath and the group
// templates in groupsDir. Either may be empty, not both.
func Load(defaultPath, groupsDir string) (*Set, error) {
	if defaultPath == "" && groupsDir == "" {
		return nil, errors.New("manifest: no default template and no groups directory given")
	}
	s := &Set{groups: map[string]*tmpl{}, dir: groupsDir}
	if defaultPath != "" {
		t, err := loadFile(defaultPath, "sample")
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		s.def = t
	}
	if groupsDir != "" {
		if err := s.loadGroups(groupsDir); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
	}
	if s.def == nil && len(s.groups) == 0 {
		return nil, fmt.Errorf("manifest: %s: no <group>.json templates and no default template", groupsDir)
	}
	return s, nil
}

// FromBytes makes a Set of one default template held in memory, such as the
// sample built into the binary; name stands for its path in messages.
func FromBytes(name string, src []byte) (*Set, error) {
	t, err := parse(name, "sample", src)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return &Set{groups: map[string]*tmpl{}, def: t}, nil
}

func (s *Set) loadGroups(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("groups directory: %w", err)
	}
	for _, e := range entries {
		group, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || group == "" || strings.HasPrefix(group, ".") || e.IsDir() {
			continue
		}
		t, err := loadFile(filepath.Join(dir, e.Name()), group)
		if err != nil {
			return err
		}
		s.groups[group] = t
	}
	return nil
}

// Render renders the template that fits d and returns the manifest as compact
// JSON, ready to send to applyConfigurationContent.
func (s *Set) Render(d Data) (json.RawMessage, error) {
	t, err := s.pick(d)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	out, err := t.render(d)
	if err != nil {
		return nil, fmt.Errorf("manifest: gateway %q: %s: %w", d.Name, t.path, err)
	}
	return out, nil
}

func (s *Set) pick(d Data) (*tmpl, error) {
	group := d.Labels[GroupLabel]
	if t, ok := s.groups[group]; ok && group != "" {
		return t, nil
	}
	if s.def != nil {
		return s.def, nil
	}
	if group == "" {
		return nil, fmt.Errorf("%w for gateway %q: it has no %q label and there is no default template",
			ErrNoTemplate, d.Name, GroupLabel)
	}
	return nil, fmt.Errorf("%w for group %q (gateway %q): no %s.json in %s and no default template",
		ErrNoTemplate, group, d.Name, group, s.dir)
}

// Groups returns the names of the group templates, sorted.
func (s *Set) Groups() []string {
	return slices.Sorted(maps.Keys(s.groups))
}

// String describes where the templates came from, for logs. It never
// includes template contents.
func (s *Set) String() string {
	def := "none"
	if s.def != nil {
		def = s.def.path
	}
	if s.dir == "" {
		return "manifests: default " + def
	}
	return fmt.Sprintf("manifests: default %s; %d group template(s) in %s: [%s]",
		def, len(s.groups), s.dir, strings.Join(s.Groups(), " "))
}
