package agent

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/hpke"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"gatehouse"
	"gatehouse/protocol"
)

// Files written into Config.OutDir by default; see DESIGN.md "The contract".
const (
	FileDeviceName = "device-name"
	FileIoTEdgeEnv = "iotedge.env"
	FileDeviceCert = "device.crt"
	FileDeviceKey  = "device.key"
	FileCACert     = "ca.crt"
)

// outFile is one file to write; name is the output (FileDeviceName, ...).
type outFile struct {
	name string
	data []byte
	mode os.FileMode
}

// credentials are an opened bundle; nil/empty fields were not in it
// (that backend is switched off on the server).
type credentials struct {
	name          string
	dps           *dpsCredentials
	cert, key, ca []byte
}

type dpsCredentials struct {
	idScope, registrationID, key string
}

// openBundle checks the bundle and opens its sealed fields.
func openBundle(b *protocol.Bundle, id *identity) (*credentials, error) {
	if err := gatehouse.ValidateName(b.Name); err != nil {
		return nil, fmt.Errorf("bundle name: %s", gatehouse.ErrorMessage(err))
	}
	dps, err := openDPS(b, id.sealKey)
	if err != nil {
		return nil, err
	}
	key, err := certificateKey(b, id)
	if err != nil {
		return nil, err
	}
	return &credentials{name: b.Name, dps: dps, cert: []byte(b.Certificate), key: key, ca: []byte(b.CAChain)}, nil
}

// layout turns credentials into the files this gateway wants.
type layout struct {
	out  *outputs
	tmpl *template.Template
	toml ConfigToml
	log  *slog.Logger
}

// files lays the credentials out in write order, device-name last, leaving
// out what the bundle lacks and what the configuration switched off.
func (l *layout) files(c *credentials) ([]outFile, error) {
	var files []outFile
	add := func(name string, data []byte, mode os.FileMode) {
		if _, on := l.out.host[name]; on && len(data) > 0 {
			files = append(files, outFile{name, data, mode})
		}
	}
	if c.dps != nil {
		add(FileIoTEdgeEnv, c.dps.env(c.name), 0o600)
	}
	add(FileDeviceCert, c.cert, 0o644)
	add(FileDeviceKey, c.key, 0o600)
	add(FileCACert, c.ca, 0o644)
	if _, on := l.out.host[FileConfigToml]; on && c.dps != nil {
		toml, err := renderEdgeConfig(l.tmpl, l.edgeConfig(c))
		if err != nil {
			return nil, err
		}
		add(FileConfigToml, toml, 0o600)
	}
	add(FileDeviceName, []byte(c.name+"\n"), 0o644)
	return files, nil
}

// edgeConfig fills the template's fields. x509 attestation needs the
// certificate and its key on disk; without them the symmetric key, which
// every DPS enrollment gatehouse creates has, is the safe choice.
func (l *layout) edgeConfig(c *credentials) edgeConfig {
	d := edgeConfig{
		Name: c.name, IDScope: c.dps.idScope, RegistrationID: c.dps.registrationID, SymmetricKey: c.dps.key,
		GlobalEndpoint: l.toml.GlobalEndpoint, Attestation: AttestSymmetricKey,
	}
	_, certOn := l.out.host[FileDeviceCert]
	_, keyOn := l.out.host[FileDeviceKey]
	if certOn && keyOn && len(c.cert) > 0 && len(c.key) > 0 {
		d.IdentityCertURI, d.IdentityPKURI = fileURI(l.out.device[FileDeviceCert]), fileURI(l.out.device[FileDeviceKey])
		if l.toml.Attestation == AttestX509 {
			d.Attestation = AttestX509
		}
	} else if l.toml.Attestation == AttestX509 {
		l.log.Warn("x509 attestation configured but the bundle has no certificate and key to write; using the symmetric key")
	}
	if _, on := l.out.host[FileCACert]; on && len(c.ca) > 0 {
		d.CACertURI = fileURI(l.out.device[FileCACert])
	}
	return d
}

// certificateKey is the key for the bundle's certificate: sealed in the
// bundle when the PKI generated it, or else, when the PKI signed our CSR,
// the derived certificate key, written only if the certificate is for it.
func certificateKey(b *protocol.Bundle, id *identity) ([]byte, error) {
	key, err := openField(b, id.sealKey, protocol.FieldPrivateKey)
	if err != nil || key != nil || b.Certificate == "" {
		return key, err
	}
	if err := matchesKey(b.Certificate, &id.certKey.PublicKey); err != nil {
		return nil, fmt.Errorf("certificate for %s: %w", b.Name, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(id.certKey)
	if err != nil {
		return nil, fmt.Errorf("encode certificate key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// matchesKey refuses a certificate for some other key: written beside our
// key it would make every TLS handshake fail, long after provisioning.
func matchesKey(certPEM string, pub *ecdsa.PublicKey) error {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return errors.New("not a PEM CERTIFICATE")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if certPub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !certPub.Equal(pub) {
		return errors.New("its public key does not match this gateway's certificate key " +
			"(was it signed for another gateway's CSR?); bundle has no private key to use instead")
	}
	return nil
}

// openField decrypts one sealed field; nil when the bundle has none.
func openField(b *protocol.Bundle, sealKey hpke.PrivateKey, field string) ([]byte, error) {
	ct, ok := b.Sealed[field]
	if !ok || len(ct) == 0 {
		return nil, nil
	}
	pt, err := protocol.Open(sealKey, field, ct)
	if err != nil {
		return nil, fmt.Errorf("open sealed %s (was the bundle sealed to another key?): %w", field, err)
	}
	return pt, nil
}

// openDPS returns the DPS credentials, or nil when DPS is not part of the bundle.
func openDPS(b *protocol.Bundle, sealKey hpke.PrivateKey) (*dpsCredentials, error) {
	key, err := openField(b, sealKey, protocol.FieldDPSPrimaryKey)
	if err != nil {
		return nil, err
	}
	if b.DPSIDScope == "" && b.DPSRegistrationID == "" && key == nil {
		return nil, nil
	}
	if b.DPSIDScope == "" || key == nil {
		return nil, fmt.Errorf("bundle for %s has incomplete DPS credentials (id scope set: %t, primary key set: %t)",
			b.Name, b.DPSIDScope != "", key != nil)
	}
	d := &dpsCredentials{idScope: b.DPSIDScope, registrationID: cmp.Or(b.DPSRegistrationID, b.Name), key: string(key)}
	for field, v := range map[string]string{"DPS_ID_SCOPE": d.idScope, "DPS_REGISTRATION_ID": d.registrationID, "DPS_SYMMETRIC_KEY": d.key} {
		if !envSafe(v) {
			// Never echo the value: it may be the symmetric key.
			return nil, fmt.Errorf("bundle field %s has characters unsafe for an env file", field)
		}
	}
	return d, nil
}

// env renders iotedge.env.
func (d *dpsCredentials) env(name string) []byte {
	var sb strings.Builder
	for _, v := range [][2]string{
		{"DEVICE_NAME", name},
		{"DPS_ID_SCOPE", d.idScope},
		{"DPS_REGISTRATION_ID", d.registrationID},
		{"DPS_SYMMETRIC_KEY", d.key},
	} {
		fmt.Fprintf(&sb, "%s=%s\n", v[0], v[1])
	}
	return []byte(sb.String())
}

// envSafe accepts values that read the same in a systemd EnvironmentFile and
// a sourced shell script without quoting: names, id scopes, base64 keys.
func envSafe(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("+/=._:-", r)
		if !ok {
			return false
		}
	}
	return true
}

// writeFiles writes files in order, each atomically, and returns their paths.
func writeFiles(out *outputs, files []outFile, checkpoint func(string)) ([]string, error) {
	if err := os.MkdirAll(out.outDir, 0o700); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	var paths []string
	for _, f := range files {
		p := out.host[f.name]
		if err := os.MkdirAll(filepath.Dir(p), out.dirMode(filepath.Dir(p))); err != nil {
			return paths, fmt.Errorf("create directory for %s: %w", f.name, err)
		}
		midWrite := func() { checkpoint("mid-write:" + f.name) }
		if err := writeAtomic(p, f.data, f.mode, midWrite); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// writeFileAtomic replaces path so that after a power cut it holds either the
// old or the new content, never a torn file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeAtomic(path, data, mode, func() {})
}

// writeAtomic: temp file in the same directory, fsync, rename, fsync the
// directory. The mode is set before any byte is written so a secret is
// never briefly world-readable. midWrite runs with half the data written,
// where a power cut would leave a torn temp file (see outputs.cleanTemps).
func writeAtomic(path string, data []byte, mode os.FileMode, midWrite func()) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	half := len(data) / 2
	if _, err := f.Write(data[:half]); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	midWrite()
	if _, err := f.Write(data[half:]); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// removeDurably deletes path and makes the deletion survive a power cut.
func removeDurably(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}
