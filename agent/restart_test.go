package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeTools puts executables that do nothing on PATH (and nothing else).
func fakeTools(t *testing.T, names ...string) {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
}

// installUnits creates unit files below root, as a package would.
func installUnits(t *testing.T, root, dir string, units ...string) {
	t.Helper()
	for _, u := range units {
		p := filepath.Join(root, dir, u)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("[Service]\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRestartCommands(t *testing.T) {
	tests := []struct {
		name      string
		tools     []string
		units     map[string][]string // unit dir -> units
		cfg       Config
		wroteToml bool
		want      []string
	}{
		{"mender 4 and iotedge", []string{"systemctl", "iotedge"},
			map[string][]string{"/usr/lib/systemd/system": {"mender-authd.service", "mender-updated.service"}},
			Config{}, true, []string{"systemctl restart mender-authd.service", "iotedge config apply -c '{root}/var/lib/gatehouse/config.toml'"}},
		{"mender 3, config.toml in /etc/aziot", []string{"systemctl", "iotedge"},
			map[string][]string{"/lib/systemd/system": {"mender-client.service"}},
			Config{Paths: Paths{ConfigToml: "/etc/aziot/config.toml"}}, true,
			[]string{"systemctl restart mender-client.service", "iotedge config apply -c '{root}/etc/aziot/config.toml'"}},
		{"no mender, no iotedge, fallback", []string{"systemctl"}, nil,
			Config{Restart: Restart{IoTEdgeFallback: "docker restart iotedge"}}, true, []string{"docker restart iotedge"}},
		{"no config.toml written", []string{"systemctl", "iotedge"},
			map[string][]string{"/etc/systemd/system": {"mender-authd.service"}},
			Config{}, false, []string{"systemctl restart mender-authd.service"}},
		{"mender unit but no systemctl", nil,
			map[string][]string{"/etc/systemd/system": {"mender-authd.service"}}, Config{}, true, nil},
		{"explicit and extra", []string{"systemctl", "iotedge"},
			map[string][]string{"/etc/systemd/system": {"mender-authd.service"}},
			Config{Restart: Restart{Mender: "rc-service mender restart", IoTEdge: RestartNone, Extra: []string{"systemctl restart app", ""}}},
			true, []string{"rc-service mender restart", "systemctl restart app"}},
		{"explicit list wins", []string{"systemctl", "iotedge"}, nil,
			Config{RestartCommands: []string{}, Restart: Restart{Mender: "x"}}, true, []string{}},
		{"no restart", []string{"systemctl", "iotedge"}, nil,
			Config{NoRestart: true, RestartCommands: []string{"x"}}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			fakeTools(t, tt.tools...)
			for dir, units := range tt.units {
				installUnits(t, root, dir, units...)
			}
			cfg := tt.cfg
			cfg.Root = root
			cfg = cfg.withDefaults()
			out, err := resolveOutputs(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, log := newLogs(t)
			got := cfg.restartCommands(log, out, tt.wroteToml)
			var want []string
			for _, w := range tt.want {
				want = append(want, strings.ReplaceAll(w, "{root}", root))
			}
			if !slices.Equal(got, want) || (got == nil) != (tt.want == nil) {
				t.Errorf("commands %q, want %q", got, want)
			}
		})
	}
}

func TestRestartDefaultConfigPathNeedsNoFlag(t *testing.T) {
	fakeTools(t, "iotedge")
	cfg := Config{Paths: Paths{ConfigToml: defaultAziotConfig}}.withDefaults()
	out, _ := resolveOutputs(&cfg)
	_, log := newLogs(t)
	if got := cfg.iotEdgeRestart(log, out, true); !slices.Equal(got, []string{"iotedge config apply"}) {
		t.Errorf("got %q", got)
	}
}

func TestRestartFailureReportsOutput(t *testing.T) {
	_, log := newLogs(t)
	err := runRestarts(t.Context(), log, []string{"true", "echo 'Error: unit mender-authd.service not found' >&2; exit 5"},
		restartEnv{name: "gw-01"})
	wantExit(t, err, ExitRestart, "credentials written", "mender-authd.service not found", "exit status 5", `"echo `)
}

func TestShellQuote(t *testing.T) {
	if got := shellQuote("/a b/it's"); got != `'/a b/it'\''s'` {
		t.Errorf("shellQuote = %s", got)
	}
}
