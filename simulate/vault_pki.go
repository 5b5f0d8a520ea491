package simulate

import (
	"net/http"
	"strings"
	"time"
)

// vaultCertRequest is the body of issue and sign.
type vaultCertRequest struct {
	CommonName       string `json:"common_name"`
	CSR              string `json:"csr"`
	TTL              any    `json:"ttl"` // Vault takes "8760h", "30d" or seconds
	Format           string `json:"format"`
	PrivateKeyFormat string `json:"private_key_format"`
	KeyType          string `json:"key_type"`
	KeyBits          int    `json:"key_bits"`
}

// certificate answers issue/<role> and sign/<role>. Vault routes any role
// name and refuses an unknown one with a 400 (metricsWrap in backend.go).
func (a *vaultAPI) certificate(w http.ResponseWriter, r *http.Request, params []string) {
	var req vaultCertRequest
	if !decodeVault(w, r, &req) {
		return
	}
	if params[0] != a.opts.Role {
		writeVaultError(w, http.StatusBadRequest, "unknown role: "+vaultShorten(params[0], 80))
		return
	}
	sign := strings.HasPrefix(strings.TrimPrefix(r.URL.Path, "/v1/"+a.opts.Mount+"/"), "sign/")
	c, err := a.makeCertificate(sign, req)
	if err != nil {
		writeVaultErr(w, err)
		return
	}
	writeVaultData(w, certificateData(c), c.Warnings...)
}

func (a *vaultAPI) makeCertificate(sign bool, req vaultCertRequest) (vaultCert, error) {
	ttl, err := parseVaultTTL(req.TTL)
	if err != nil {
		return vaultCert{}, err
	}
	if err := checkVaultFormat(req.Format); err != nil {
		return vaultCert{}, err
	}
	o := certOrder{sign: sign, commonName: req.CommonName, csr: req.CSR, ttl: ttl}
	if !sign {
		if o.pkcs8, err = vaultKeyFormat(req.PrivateKeyFormat); err != nil {
			return vaultCert{}, err
		}
		o.keyType, o.keyBits = req.KeyType, req.KeyBits
	}
	return a.pki.execute(o)
}

// certificateData is Vault's answer to issue and sign. Vault's PEM strings
// carry no trailing newline.
func certificateData(c vaultCert) map[string]any {
	ca := strings.TrimSpace(c.CAChainPEM)
	d := map[string]any{
		"certificate":   strings.TrimSpace(c.CertificatePEM),
		"issuing_ca":    ca,
		"ca_chain":      []string{ca},
		"serial_number": c.Serial,
		"not_before":    c.notBefore.Unix(),
		"expiration":    c.expires.Unix(),
	}
	if c.PrivateKeyPEM != "" {
		d["private_key"] = strings.TrimSpace(c.PrivateKeyPEM)
		d["private_key_type"] = c.keyType
	}
	return d
}

func checkVaultFormat(f string) error {
	switch f {
	case "", "pem":
		return nil
	case "der", "pem_bundle":
		return vaultBadRequest("format %q is valid but not simulated; use pem", f)
	}
	return vaultBadRequest(`the "format" path parameter must be "pem", "der", or "pem_bundle"`)
}

// vaultKeyFormat reports whether the key comes as PKCS#8; Vault's default
// "der" (and "pem") give the key's native form, SEC1 for EC keys.
func vaultKeyFormat(f string) (pkcs8 bool, err error) {
	switch f {
	case "", "der", "pem":
		return false, nil
	case "pkcs8":
		return true, nil
	}
	return false, vaultBadRequest(`the "private_key_format" field must be "der", "pem", or "pkcs8"`)
}

// readRole answers GET roles/<name>; an unknown role is a 404 with no
// message, as pathRoleRead returns nothing for it.
func (a *vaultAPI) readRole(w http.ResponseWriter, r *http.Request, params []string) {
	if params[0] != a.opts.Role {
		writeVaultError(w, http.StatusNotFound)
		return
	}
	writeVaultData(w, a.pki.Role().responseData())
}

// vaultRevokeRequest names the certificate to revoke, one way or the other.
type vaultRevokeRequest struct {
	SerialNumber string `json:"serial_number"`
	Certificate  string `json:"certificate"`
}

func (a *vaultAPI) revoke(w http.ResponseWriter, r *http.Request, _ []string) {
	var req vaultRevokeRequest
	if !decodeVault(w, r, &req) {
		return
	}
	serial, err := revokeSerial(req)
	if err != nil {
		writeVaultErr(w, err)
		return
	}
	at, err := a.pki.revoke(serial)
	if err != nil {
		writeVaultErr(w, err)
		return
	}
	writeVaultData(w, map[string]any{
		"revocation_time":         at.Unix(),
		"revocation_time_rfc3339": at.UTC().Format(time.RFC3339Nano),
		"state":                   "revoked",
	})
}

func revokeSerial(req vaultRevokeRequest) (string, error) {
	switch {
	case req.SerialNumber != "" && req.Certificate != "":
		return "", vaultBadRequest("Must provide either the certificate or the serial to revoke; not both.")
	case req.SerialNumber != "":
		return req.SerialNumber, nil
	case req.Certificate == "":
		return "", vaultBadRequest("The serial number or certificate to revoke must be provided.")
	}
	cert, err := parseVaultCertificate(req.Certificate)
	if err != nil {
		return "", err
	}
	return FormatSerial(cert.SerialNumber), nil
}
