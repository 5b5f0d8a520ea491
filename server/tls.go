package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// hstsHeader tells browsers to use HTTPS only for a year. No
// includeSubDomains: gatehouse cannot know that every sibling host speaks
// TLS, and that promise is hard to take back.
const hstsHeader = "max-age=31536000"

// Certificate is the TLS certificate the server presents. It is read from a
// PEM pair of files and can be reloaded while serving: handshakes pick up
// the current one through GetCertificate, so renewing a certificate drops
// no connection.
type Certificate struct {
	certFile, keyFile string
	now               func() time.Time
	cur               atomic.Pointer[tls.Certificate]
}

// LoadCertificate reads the PEM certificate (chain) and key. The pair must
// match and the leaf must be currently valid.
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile, now: time.Now}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again and swaps the certificate in. On any error
// the previous certificate stays in use, so a half-copied renewal never
// takes the server off the air; the caller logs why.
func (c *Certificate) Reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls: load %s and %s: %w", c.certFile, c.keyFile, err)
	}
	if pair.Leaf == nil {
		return errors.New("tls: " + c.certFile + " holds no certificate")
	}
	if now := c.now(); now.After(pair.Leaf.NotAfter) || now.Before(pair.Leaf.NotBefore) {
		return fmt.Errorf("tls: certificate in %s is valid only from %s to %s",
			c.certFile, pair.Leaf.NotBefore.Format(time.RFC3339), pair.Leaf.NotAfter.Format(time.RFC3339))
	}
	c.cur.Store(&pair)
	return nil
}

// Leaf returns the certificate currently presented, for logging.
func (c *Certificate) Leaf() *tls.Certificate { return c.cur.Load() }

// GetCertificate is the tls.Config hook.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// tlsConfig is the server side: TLS 1.2 at least (1.0 and 1.1 are broken and
// deprecated by RFC 8996); Go's default cipher suites are already the safe
// ones, so none are listed here.
func (c *Certificate) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.GetCertificate,
	}
}
