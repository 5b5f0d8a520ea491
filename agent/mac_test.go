package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// fakeSysfs builds /sys/class/net with the given interfaces.
func fakeSysfs(t *testing.T, ifaces map[string][3]string) string {
	t.Helper()
	root := t.TempDir()
	for name, v := range ifaces {
		dir := filepath.Join(root, "class", "net", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, file := range []string{"type", "ifindex", "address"} {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(v[i]+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func TestFindMACFromSysfs(t *testing.T) {
	root := fakeSysfs(t, map[string][3]string{
		// name: type, ifindex, address
		"lo":      {"772", "1", "00:00:00:00:00:00"},
		"dummy0":  {"1", "2", "02:00:00:00:00:d0"}, // skipped by name, as Mender does
		"can0":    {"280", "3", "aa:bb:cc:dd:ee:00"},
		"wwan0":   {"1", "9", "02:00:00:00:00:09"},
		"enp1s0":  {"1", "4", "DC:A6:32:01:02:03"},
		"docker0": {"1", "12", "02:42:ac:11:00:01"},
		"broken":  {"1", "x", "02:00:00:00:00:07"},
	})
	tests := []struct {
		name, iface, override, want string
	}{
		{"lowest ifindex Ethernet", "", "", "dc:a6:32:01:02:03"},
		{"named interface", "docker0", "", "02:42:ac:11:00:01"},
		{"override with dashes refused", "", "02-00-00-00-00-AA", ""},
		{"override normalised", "", "02:00:00:00:00:AA", "02:00:00:00:00:aa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findMAC(root, tt.iface, tt.override)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("got %s, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("findMAC = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestFindMACErrors(t *testing.T) {
	root := fakeSysfs(t, map[string][3]string{"lo": {"772", "1", "00:00:00:00:00:00"}})
	for _, iface := range []string{"lo", "no-such-if0", "../../etc"} {
		if mac, err := findMAC(root, iface, ""); err == nil {
			t.Errorf("interface %q: got %s, want an error", iface, mac)
		}
	}
}

func TestSysfsNICsOrder(t *testing.T) {
	root := fakeSysfs(t, map[string][3]string{
		"eth1": {"1", "3", "02:00:00:00:00:03"},
		"eth0": {"1", "2", "02:00:00:00:00:02"},
		"wan":  {"1", "10", "02:00:00:00:00:10"},
	})
	nics, err := sysfsNICs(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nics {
		names = append(names, n.name)
	}
	if len(names) != 3 || names[0] != "eth0" || names[1] != "eth1" || names[2] != "wan" {
		t.Fatalf("order %v, want eth0 eth1 wan", names)
	}
}

func TestFindMACFallsBackWithoutSysfs(t *testing.T) {
	// Without sysfs the net package answers; whatever it finds must be a
	// normalised MAC (or a clear error on a box with no Ethernet at all).
	mac, err := findMAC(filepath.Join(t.TempDir(), "nosys"), "", "")
	if err != nil {
		t.Logf("no interface here: %v", err)
		return
	}
	if len(mac) != 17 {
		t.Fatalf("mac %q", mac)
	}
}
