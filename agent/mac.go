package agent

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gatehouse"
)

// arphrdEther is ARPHRD_ETHER, the sysfs "type" of Ethernet-like interfaces
// (wired, Wi-Fi, bridges); loopback is 772.
const arphrdEther = 1

// nic is one interface considered for the device's MAC.
type nic struct {
	name  string
	index int
	mac   string // normalised
}

// findMAC returns the MAC the gateway reports: the override, the named
// interface's, or that of the Ethernet interface with the lowest ifindex.
// The last is exactly what Mender's identity script picks (ARPHRD_ETHER,
// dummy* skipped, lowest ifindex): Mender matches a preauthorization by that
// identity, so a "smarter" choice here would leave the device unaccepted.
func findMAC(sysfsRoot, iface, override string) (string, error) {
	if override != "" {
		return gatehouse.NormalizeMAC(override)
	}
	if iface != "" {
		return interfaceMAC(sysfsRoot, iface)
	}
	nics, err := sysfsNICs(sysfsRoot)
	if err != nil || len(nics) == 0 {
		// No sysfs (not Linux, or a sandbox): ask the kernel the portable way.
		nics, err = netNICs()
	}
	if err != nil {
		return "", err
	}
	if len(nics) == 0 {
		return "", errors.New("no Ethernet interface with a MAC address found: pass --interface or --mac")
	}
	return nics[0].mac, nil
}

// sysfsNICs lists Ethernet interfaces from sysfs, lowest ifindex first.
func sysfsNICs(root string) ([]nic, error) {
	dir := filepath.Join(root, "class", "net")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var nics []nic
	for _, e := range entries {
		if n, ok := sysfsNIC(dir, e.Name()); ok {
			nics = append(nics, n)
		}
	}
	slices.SortFunc(nics, func(a, b nic) int { return cmp.Compare(a.index, b.index) })
	return nics, nil
}

// sysfsNIC reads one interface; ok is false for anything that is not an
// Ethernet interface with a usable address, and for the dummy interfaces
// Mender's identity script skips.
func sysfsNIC(dir, name string) (nic, bool) {
	if name == "lo" || strings.HasPrefix(name, "dummy") {
		return nic{}, false
	}
	typ, err1 := readSysInt(filepath.Join(dir, name, "type"))
	idx, err2 := readSysInt(filepath.Join(dir, name, "ifindex"))
	addr, err3 := os.ReadFile(filepath.Join(dir, name, "address"))
	if err := errors.Join(err1, err2, err3); err != nil || typ != arphrdEther {
		return nic{}, false
	}
	mac, err := gatehouse.NormalizeMAC(strings.TrimSpace(string(addr)))
	if err != nil {
		return nic{}, false
	}
	return nic{name: name, index: idx, mac: mac}, true
}

func readSysInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// netNICs lists interfaces with a 48-bit hardware address via the net package.
func netNICs() ([]nic, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	slices.SortFunc(ifs, func(a, b net.Interface) int { return cmp.Compare(a.Index, b.Index) })
	var nics []nic
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagLoopback != 0 || len(ifc.HardwareAddr) != 6 {
			continue
		}
		if mac, err := gatehouse.NormalizeMAC(ifc.HardwareAddr.String()); err == nil {
			nics = append(nics, nic{name: ifc.Name, index: ifc.Index, mac: mac})
		}
	}
	return nics, nil
}

// interfaceMAC returns the MAC of the interface the operator named.
func interfaceMAC(sysfsRoot, name string) (string, error) {
	if strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", fmt.Errorf("invalid interface name %q", name)
	}
	addr, err := os.ReadFile(filepath.Join(sysfsRoot, "class", "net", name, "address"))
	if errors.Is(err, os.ErrNotExist) {
		ifc, ierr := net.InterfaceByName(name)
		if ierr != nil {
			return "", fmt.Errorf("interface %s: %w", name, ierr)
		}
		addr = []byte(ifc.HardwareAddr.String())
	} else if err != nil {
		return "", fmt.Errorf("interface %s: %w", name, err)
	}
	mac, err := gatehouse.NormalizeMAC(strings.TrimSpace(string(addr)))
	if err != nil {
		return "", fmt.Errorf("interface %s: %s", name, gatehouse.ErrorMessage(err))
	}
	return mac, nil
}
