package main

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gatehouse/agent"
	"gatehouse/simulate"
)

// backendTruth is what the simulators hold for each name, to hold the
// gateways' files against.
type backendTruth struct {
	idScope string
	dpsKey  map[string]string   // name -> the enrollment's primary key
	serials map[string][]string // name -> unrevoked certificate serials
}

func truthOf(b *Backends, t *tally) backendTruth {
	tr := backendTruth{idScope: b.DPS.State.IDScope(), dpsKey: map[string]string{}, serials: liveCerts(b.Vault.State, t)}
	for _, e := range b.DPS.State.Enrollments() {
		tr.dpsKey[e.RegistrationID] = e.PrimaryKey
	}
	return tr
}

// checkFiles holds one gateway's output directory to what it must be once
// the agent is done: device-name names the gateway, iotedge.env carries
// its DPS enrollment's key, device.crt is its one valid certificate, for
// the key in device.key, issued under ca.crt, and no temp file of an
// interrupted write is left beside them. strict also wants the
// pending-steps marker gone (the ack reached a server that stayed up).
func checkFiles(g *Gateway, name string, tr backendTruth, strict bool, t *tally) {
	if got, ok := g.Bundled(); !ok || got != name {
		t.lost("bundle of %s: device-name %q (written %v)", name, got, ok)
		return
	}
	checkEnvFile(g, name, tr, t)
	checkCertFiles(g, name, tr, t)
	temps, _ := filepath.Glob(filepath.Join(g.OutDir, ".*.tmp-*"))
	if len(temps) > 0 {
		t.lost("%s: %d temp files of an interrupted write left: %s", name, len(temps), filepath.Base(temps[0]))
	}
	if _, err := os.Stat(filepath.Join(g.OutDir, agent.FileDeviceName+agent.PendingSuffix)); strict && err == nil {
		t.lost("%s: the pending-steps marker is still there", name)
	}
}

func checkEnvFile(g *Gateway, name string, tr backendTruth, t *tally) {
	env, err := readEnvFile(filepath.Join(g.OutDir, agent.FileIoTEdgeEnv))
	if err != nil {
		t.lost("%s: %v", name, err)
		return
	}
	if env["DEVICE_NAME"] != name || env["DPS_REGISTRATION_ID"] != name || env["DPS_ID_SCOPE"] != tr.idScope {
		t.lost("%s: iotedge.env names %q, registration %q, scope %q", name, env["DEVICE_NAME"], env["DPS_REGISTRATION_ID"], env["DPS_ID_SCOPE"])
	}
	// Compared, never printed: it is the symmetric key.
	if key, ok := tr.dpsKey[name]; !ok || env["DPS_SYMMETRIC_KEY"] != key {
		t.lost("%s: iotedge.env's symmetric key is not its DPS enrollment's", name)
	}
}

func readEnvFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out, nil
}

func checkCertFiles(g *Gateway, name string, tr backendTruth, t *tally) {
	certPEM, err1 := os.ReadFile(filepath.Join(g.OutDir, agent.FileDeviceCert))
	keyPEM, err2 := os.ReadFile(filepath.Join(g.OutDir, agent.FileDeviceKey))
	caPEM, err3 := os.ReadFile(filepath.Join(g.OutDir, agent.FileCACert))
	if err1 != nil || err2 != nil || err3 != nil {
		t.lost("%s: certificate files missing (crt %v, key %v, ca %v)", name, err1, err2, err3)
		return
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		t.lost("%s: device.crt: %v", name, err)
		return
	}
	if cert.Subject.CommonName != name {
		t.lost("%s: device.crt is for %q", name, cert.Subject.CommonName)
	}
	if err := keyMatches(cert, keyPEM); err != nil {
		t.lost("%s: device.key: %v", name, err)
	}
	if serial := simulate.FormatSerial(cert.SerialNumber); len(tr.serials[name]) != 1 || tr.serials[name][0] != serial {
		t.lost("%s: device.crt %s is not its one valid certificate (valid: %v)", name, serial, tr.serials[name])
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.lost("%s: ca.crt holds no certificate", name)
	} else if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.lost("%s: device.crt does not chain to ca.crt: %v", name, err)
	}
}

// keyMatches checks the private key in keyPEM is the certificate's.
func keyMatches(cert *x509.Certificate, keyPEM []byte) error {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return errors.New("not PEM")
	}
	key, err := parsePrivateKey(block)
	if err != nil {
		return err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("holds another key than device.crt's")
	}
	return nil
}

func parsePrivateKey(block *pem.Block) (crypto.Signer, error) {
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", block.Type, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a private key", block.Type)
	}
	return s, nil
}

// registerEdge does what IoT Edge does on the gateway once the files are
// there: it registers with DPS using iotedge.env, which only a symmetric
// key DPS holds for that registration lets it do. The IoT Hub follow-up
// then configures the gateway.
func registerEdge(b *Backends, g *Gateway) error {
	env, err := readEnvFile(filepath.Join(g.OutDir, agent.FileIoTEdgeEnv))
	if err != nil {
		return err
	}
	if err := b.DPS.State.Register(env["DPS_REGISTRATION_ID"], env["DPS_SYMMETRIC_KEY"], ""); err != nil {
		return fmt.Errorf("%s: dps registration with the key in iotedge.env: %w", g.MAC, err)
	}
	return nil
}
