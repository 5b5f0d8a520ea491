package config

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Env looks settings up: the process environment first, then a config file
// of KEY=VALUE lines (the format of systemd's EnvironmentFile), so one file
// can serve both. A secret may also come from NAME_FILE, a path whose
// contents are the value, which is how container platforms mount secrets.
type Env struct {
	getenv func(string) string
	file   map[string]string
}

// NewEnv reads the optional config file at path.
func NewEnv(getenv func(string) string, path string) (*Env, error) {
	e := &Env{getenv: getenv, file: map[string]string{}}
	if path == "" {
		return e, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if e.file, err = parseEnvFile(bufio.NewScanner(f)); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return e, nil
}

func parseEnvFile(sc *bufio.Scanner) (map[string]string, error) {
	out := map[string]string{}
	n := 1
	for ; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("line %d: want KEY=VALUE", n)
		}
		out[strings.TrimSpace(k)] = unquote(strings.TrimSpace(v))
	}
	// A read error (a line past the scanner's 64 KiB) refuses the whole
	// file, as a bad line does: half a configuration must not pass for one.
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n, err)
	}
	return out, nil
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// Get returns a setting, or "" when it is unset.
func (e *Env) Get(key string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return e.file[key]
}

// Secret returns key's value, or the contents of the file named by
// key_FILE, trimmed of a trailing newline. Setting both is an error, since
// one of them would be silently ignored.
func (e *Env) Secret(key string) (string, error) {
	v, path := e.Get(key), e.Get(key+"_FILE")
	if v != "" && path != "" {
		return "", fmt.Errorf("config: set %s or %s_FILE, not both", key, key)
	}
	if path == "" {
		return v, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config: %s_FILE: %w", key, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
