package agent

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/hpke"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gatehouse"
	"gatehouse/protocol"
)

// Files written into Config.OutDir; see DESIGN.md "The contract".
const (
	FileDeviceName = "device-name"
	FileIoTEdgeEnv = "iotedge.env"
	FileDeviceCert = "device.crt"
	FileDeviceKey  = "device.key"
	FileCACert     = "ca.crt"
)

// outFile is one file to write.
type outFile struct {
	name string
	data []byte
	mode os.FileMode
}

// bundleFiles opens the sealed fields and lays the bundle out as files.
// device-name comes last: its presence is what tells systemd (and people)
// that the gateway is provisioned, so everything else must be on disk first.
func bundleFiles(b *protocol.Bundle, id *identity) ([]outFile, error) {
	if err := gatehouse.ValidateName(b.Name); err != nil {
		return nil, fmt.Errorf("bundle name: %s", gatehouse.ErrorMessage(err))
	}
	var files []outFile
	env, err := iotEdgeEnv(b, id.sealKey)
	if err != nil {
		return nil, err
	}
	if env != nil {
		files = append(files, outFile{FileIoTEdgeEnv, env, 0o600})
	}
	if b.Certificate != "" {
		files = append(files, outFile{FileDeviceCert, []byte(b.Certificate), 0o644})
	}
	key, err := certificateKey(b, id)
	if err != nil {
		return nil, err
	}
	if key != nil {
		files = append(files, outFile{FileDeviceKey, key, 0o600})
	}
	if b.CAChain != "" {
		files = append(files, outFile{FileCACert, []byte(b.CAChain), 0o644})
	}
	return append(files, outFile{FileDeviceName, []byte(b.Name + "\n"), 0o644}), nil
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

// openField decrypts one sealed field; nil when the bundle has none (that
// backend is switched off on the server).
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

// iotEdgeEnv renders iotedge.env, or nil when DPS is not part of the bundle.
func iotEdgeEnv(b *protocol.Bundle, sealKey hpke.PrivateKey) ([]byte, error) {
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
	regID := cmp.Or(b.DPSRegistrationID, b.Name)
	vars := [][2]string{
		{"DEVICE_NAME", b.Name},
		{"DPS_ID_SCOPE", b.DPSIDScope},
		{"DPS_REGISTRATION_ID", regID},
		{"DPS_SYMMETRIC_KEY", string(key)},
	}
	var sb strings.Builder
	for _, v := range vars {
		if !envSafe(v[1]) {
			// Never echo the value: it may be the symmetric key.
			return nil, fmt.Errorf("bundle field %s has characters unsafe for an env file", v[0])
		}
		fmt.Fprintf(&sb, "%s=%s\n", v[0], v[1])
	}
	return []byte(sb.String()), nil
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

// writeFiles writes files into dir in order, each atomically, and returns their paths.
func writeFiles(dir string, files []outFile) ([]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := writeFileAtomic(p, f.data, f.mode); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// writeFileAtomic replaces path so that after a power cut it holds either the
// old or the new content, never a torn file: temp file in the same directory,
// fsync, rename, fsync the directory. The mode is set before any byte is
// written so a secret is never briefly world-readable.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
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
	if _, err := f.Write(data); err != nil {
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
