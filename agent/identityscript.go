package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"gatehouse"
)

// identityScriptTimeout bounds Mender's identity script, which only reads
// sysfs; a hung script must not hold up enrollment forever.
const identityScriptTimeout = 30 * time.Second

// scriptMAC runs a Mender identity script and returns its mac= value, so the
// claim is byte for byte the identity the Mender client will report. Its
// errors carry ExitConfig.
func scriptMAC(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, identityScriptTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", exitErrorf(ExitConfig, "identity script %s: %w: %s", path, err, tail(stderr.String(), 200))
	}
	mac, ok := identityValue(stdout.String(), "mac")
	if !ok {
		return "", exitErrorf(ExitConfig, "identity script %s printed no mac= line", path)
	}
	norm, err := gatehouse.NormalizeMAC(mac)
	if err != nil {
		return "", exitErrorf(ExitConfig, "identity script %s: %s", path, gatehouse.ErrorMessage(err))
	}
	return norm, nil
}

// identityValue returns the first value of key in key=value lines. Mender
// turns a repeated key into a list; its first element is what we report.
func identityValue(out, key string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// tail is the end of a command's output on one line: errors are usually last.
func tail(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) > n {
		return "..." + string(r[len(r)-n:])
	}
	return string(r)
}

// describeMACSource is for the log line that shows where the claim came from.
func describeMACSource(c *Config) string {
	switch {
	case c.MAC != "":
		return "--mac"
	case c.IdentityScript != "":
		return fmt.Sprintf("identity script %s", c.IdentityScript)
	case c.Interface != "":
		return "interface " + c.Interface
	}
	return "lowest-index Ethernet interface"
}
