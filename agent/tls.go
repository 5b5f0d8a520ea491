package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// pinPrefix is the hash named in a pin, as in HPKP and curl's --pinnedpubkey.
const pinPrefix = "sha256/"

// validateTransport refuses plain HTTP unless allowed, and TLS settings
// that could not apply.
func (c *Config) validateTransport() error {
	u, err := url.Parse(c.Server)
	if err != nil {
		return err // validateServer reported it already
	}
	if u.Scheme == "http" && !c.InsecureHTTP {
		return errors.New("refusing plain http server " + quote(c.Server) +
			": nothing would prove the answers come from your server; use https, or --insecure-http (INSECURE_HTTP=yes) in a lab")
	}
	if u.Scheme == "http" && (c.ServerCA != "" || c.ServerPin != "") {
		return errors.New("--ca and --pin need an https server URL")
	}
	if c.HTTPClient != nil && (c.ServerCA != "" || c.ServerPin != "") {
		return errors.New("ServerCA and ServerPin configure the default HTTP client; set TLS on the custom HTTPClient instead")
	}
	_, err = parsePins(c.ServerPin)
	return err
}

// parsePins reads "sha256/BASE64[,sha256/BASE64...]" into raw digests.
func parsePins(s string) ([][]byte, error) {
	if s == "" {
		return nil, nil
	}
	var pins [][]byte
	for p := range strings.SplitSeq(s, ",") {
		b64, ok := strings.CutPrefix(strings.TrimSpace(p), pinPrefix)
		sum, err := base64.StdEncoding.DecodeString(b64)
		if !ok || err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("invalid --pin %s: want sha256/ and the base64 SHA-256 of the server's SubjectPublicKeyInfo", quote(p))
		}
		pins = append(pins, sum)
	}
	return pins, nil
}

// PinOf returns the pin of a certificate's public key, in the form --pin
// takes: what an operator computes with
// openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64.
func PinOf(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return pinPrefix + base64.StdEncoding.EncodeToString(sum[:])
}

// setupHTTPClient fills in the default client with the TLS settings.
func (c *Config) setupHTTPClient() error {
	if c.HTTPClient != nil {
		return nil
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return &ExitError{Code: ExitConfig, Err: err}
	}
	c.HTTPClient = NewHTTPClient()
	c.HTTPClient.Transport.(*http.Transport).TLSClientConfig = tc
	return nil
}

// tlsConfig builds the client side: TLS 1.2 at least, the custom roots, and
// the pin check.
func (c *Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.ServerCA != "" {
		pool, err := loadCAFile(c.hostPath(c.ServerCA))
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	pins, err := parsePins(c.ServerPin)
	if err != nil || pins == nil {
		return tc, err
	}
	// VerifyConnection runs on every handshake, resumed ones included,
	// after the chain has been verified.
	tc.VerifyConnection = func(cs tls.ConnectionState) error { return checkPin(cs, pins) }
	return tc, nil
}

// loadCAFile reads a PEM bundle into a fresh pool: only these CAs are
// trusted, not the system roots.
func loadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--ca %s: no PEM certificates in the file", path)
	}
	return pool, nil
}

func checkPin(cs tls.ConnectionState, pins [][]byte) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	for _, p := range pins {
		if subtle.ConstantTimeCompare(sum[:], p) == 1 {
			return nil
		}
	}
	return fmt.Errorf("server key %s does not match --pin", PinOf(leaf))
}
