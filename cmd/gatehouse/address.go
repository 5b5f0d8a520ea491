package main

import (
	"errors"
	"flag"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// serverURL turns the --server value into the URL the client wants. A URL
// is taken as it is; HOST:PORT (also [IPv6]:PORT, and :PORT for this
// machine) means http://HOST:PORT, or https://HOST when PORT is 443: a
// server on 443 serves TLS, and the default for anything else is the plain
// HTTP of 'gatehouse serve' without --tls-cert. A path after HOST:PORT is
// kept, for a server behind a proxy's prefix.
func serverURL(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("empty; want HOST:PORT or a URL such as https://gatehouse.example.com")
	}
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", errors.New("not a server URL; want http(s)://HOST[:PORT] or HOST:PORT")
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return "", errors.New("a server URL holds no credentials, query or fragment")
		}
		if p := u.Port(); p != "" {
			if _, err := parsePort(p); err != nil {
				return "", err
			}
		}
		return s, nil
	}
	hostPort, path, _ := strings.Cut(s, "/")
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return "", errors.New("want HOST:PORT (such as 127.0.0.1:8080) or a URL such as https://gatehouse.example.com")
	}
	n, err := parsePort(port)
	if err != nil {
		return "", err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if !validHost(host) {
		return "", errors.New("host " + strconv.Quote(host) + " is not a host name or IP address")
	}
	scheme := "http"
	if n == 443 {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}
	if path != "" {
		u.Path = "/" + path
	}
	return u.String(), nil
}

func parsePort(p string) (int, error) {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, errors.New("port " + strconv.Quote(p) + " is not a number from 1 to 65535")
	}
	return n, nil
}

// validHost accepts an IP address or a DNS name of letters, digits, '-',
// '_' and dots.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// serverFlagSet says whether --server was on the command line, so an error
// names where the bad value came from.
func (cmd *deviceCmd) serverFlagSet() bool {
	set := false
	cmd.fs.Visit(func(f *flag.Flag) { set = set || f.Name == "server" })
	return set
}
