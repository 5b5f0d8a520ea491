package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"gatehouse/protocol"
)

// DefaultRenewAt is the fraction of its lifetime after which the agent
// renews a certificate: early enough that a gateway off line for a while
// still renews in time, late enough that renewals stay rare. The server
// refuses renewals before half the lifetime.
const DefaultRenewAt = 2.0 / 3

// RenewSuffix names the marker beside device.crt that holds the serial of a
// renewed certificate being written, until the server has confirmed it.
const RenewSuffix = ".renewing"

// renewAttempts bounds each renewal request: the timer runs again the next
// day, so a run need not wait out a long outage.
const renewAttempts = 5

// RenewOptions shape one renewal run.
type RenewOptions struct {
	// At is the fraction of the certificate's lifetime from which to
	// renew, in (0, 1); 0 means DefaultRenewAt.
	At float64
	// Force renews whatever the certificate's age; the server still
	// refuses before half its lifetime.
	Force bool
}

// RenewResult says what a renewal run found and did.
type RenewResult struct {
	Renewed  bool      // a new certificate was written (or its confirmation finished)
	Name     string    // the gateway's name
	Serial   string    // the certificate's serial as the server names it, when renewed
	NotAfter time.Time // expiry of the certificate now on disk
	DueAt    time.Time // when it is (was) due for renewal
}

// renewal is one run of the renew mode.
type renewal struct {
	*session
	opts     RenewOptions
	name     string
	certPath string
	current  *x509.Certificate
}

// Renew renews the gateway's certificate when it is due: it reads
// device.crt and, from opts.At of its lifetime on, asks the server (signed
// with the device key) for a fresh one, writes it (and its key in issue
// mode) atomically, confirms it so the server revokes the old one, and runs
// the IoT Edge restart. Before it is due it does nothing and succeeds, so a
// daily timer can run it. Errors carry exit codes as Run's do.
func Renew(ctx context.Context, cfg Config, opts RenewOptions) (*RenewResult, error) {
	if opts.At == 0 {
		opts.At = DefaultRenewAt
	}
	if !(opts.At > 0 && opts.At < 1) {
		return nil, exitErrorf(ExitConfig, "--renew-at %v: want a fraction of the certificate's lifetime between 0 and 1, such as 0.67", opts.At)
	}
	s, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	s.retry.limit = renewAttempts
	r := &renewal{session: s, opts: opts}
	if err := r.load(); err != nil {
		return nil, err
	}
	if res, done, err := r.finishEarlier(ctx); done || err != nil {
		return res, err
	}
	return r.renewIfDue(ctx)
}

// load reads the gateway's name and its certificate.
func (r *renewal) load() error {
	data, err := os.ReadFile(r.out.host[FileDeviceName])
	if errors.Is(err, fs.ErrNotExist) {
		return exitErrorf(ExitPending, "not provisioned yet (no %s): nothing to renew", r.out.host[FileDeviceName])
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", FileDeviceName, err)
	}
	r.name = strings.TrimSpace(string(data))
	r.certPath = r.out.host[FileDeviceCert]
	if r.certPath == "" {
		return exitErrorf(ExitConfig, "the device.crt output is switched off: there is no certificate to renew")
	}
	if r.current, err = readCertFile(r.certPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return exitErrorf(ExitPending, "%s provisioned without a certificate (no %s; the server has no PKI backend?): nothing to renew", r.name, r.certPath)
		}
		return err
	}
	return nil
}

func readCertFile(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s is not a PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// dueAt is when the certificate on disk is to be renewed.
func (r *renewal) dueAt() time.Time {
	life := r.current.NotAfter.Sub(r.current.NotBefore)
	return r.current.NotBefore.Add(time.Duration(float64(life) * r.opts.At))
}

func (r *renewal) result(renewed bool, serial string) *RenewResult {
	return &RenewResult{Renewed: renewed, Name: r.name, Serial: serial, NotAfter: r.current.NotAfter, DueAt: r.dueAt()}
}

// renewMarker is the serial of the renewed certificate being written and
// the hash of its DER, so a later run can tell whether device.crt holds it.
type renewMarker struct{ serial, sum string }

func (r *renewal) markerPath() string { return r.certPath + RenewSuffix }

func certSum(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return hex.EncodeToString(h[:])
}

func (r *renewal) readMarker() (*renewMarker, error) {
	data, err := os.ReadFile(r.markerPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.markerPath(), err)
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return nil, nil // torn or foreign: a new request answers the same renewal
	}
	return &renewMarker{serial: f[0], sum: f[1]}, nil
}

// finishEarlier confirms a renewal an earlier run wrote but could not
// confirm. A marker whose certificate never reached device.crt is left to
// the renewal below, which the server answers with the same certificate.
func (r *renewal) finishEarlier(ctx context.Context) (*RenewResult, bool, error) {
	m, err := r.readMarker()
	if err != nil || m == nil || m.sum != certSum(r.current) {
		return nil, false, err
	}
	r.log.Info("an earlier run wrote the renewed certificate but did not confirm it; confirming now", "serial", m.serial)
	if err := r.connect(ctx); err != nil {
		return nil, true, err
	}
	if err := r.confirm(ctx, m.serial); err != nil {
		return nil, true, err
	}
	return r.result(true, m.serial), true, r.restart(ctx)
}

// renewIfDue asks for, writes and confirms a fresh certificate when due.
func (r *renewal) renewIfDue(ctx context.Context) (*RenewResult, error) {
	due, now := r.dueAt(), r.cfg.Now()
	log := r.log.With("serial", formatSerial(r.current), "not_after", r.current.NotAfter.UTC().Format(time.RFC3339))
	if now.Before(due) && !r.opts.Force {
		log.Info(fmt.Sprintf("certificate of %s is not due for renewal until %s; nothing to do", r.name, due.UTC().Format(time.RFC3339)))
		return r.result(false, ""), nil
	}
	log.Info("renewing the certificate of " + r.name)
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	req := protocol.RenewRequest{SealKey: r.id.sealKey.PublicKey().Bytes(), CSR: r.id.csr}
	var rn protocol.Renewal
	err := r.retry.do(ctx, "renew", func(ctx context.Context) error {
		return r.client.post(ctx, protocol.PathRenew, req, &rn)
	})
	if err != nil {
		return nil, renewError(r.requestError("renew", err))
	}
	files, next, err := r.renewedFiles(&rn)
	if err != nil {
		return nil, fmt.Errorf("renewed certificate %s: %w", rn.Serial, err)
	}
	if err := r.write(files, renewMarker{serial: rn.Serial, sum: certSum(next)}); err != nil {
		return nil, err
	}
	r.current = next
	r.log.Info("wrote the renewed certificate", "serial", rn.Serial, "not_after", next.NotAfter.UTC().Format(time.RFC3339))
	if err := r.confirm(ctx, rn.Serial); err != nil {
		return r.result(true, rn.Serial), err
	}
	return r.result(true, rn.Serial), r.restart(ctx)
}

// renewError turns the server's refusals that end a gateway's life into
// the exit code of dismissed and decommissioned gateways.
func renewError(err error) error {
	var se *ServerError
	if errors.As(err, &se) && se.Status == 403 && (strings.Contains(se.Message, "decommissioned") || strings.Contains(se.Message, "dismissed")) {
		return &ExitError{Code: ExitDismissed, Err: err}
	}
	return err
}

// renewedFiles checks the answer is a certificate for this gateway with a
// key it holds, newer than the one on disk, and lays out the files.
func (r *renewal) renewedFiles(rn *protocol.Renewal) ([]outFile, *x509.Certificate, error) {
	if rn.Name != r.name {
		return nil, nil, fmt.Errorf("the server renewed it for %q, but this gateway is %q", rn.Name, r.name)
	}
	key, err := certificateKey(&protocol.Bundle{Name: rn.Name, Certificate: rn.Certificate, Sealed: rn.Sealed}, r.id)
	if err != nil {
		return nil, nil, err
	}
	if _, err := tls.X509KeyPair([]byte(rn.Certificate), key); err != nil {
		return nil, nil, fmt.Errorf("certificate and key do not match: %w", err)
	}
	block, _ := pem.Decode([]byte(rn.Certificate))
	next, err := x509.ParseCertificate(block.Bytes) // X509KeyPair parsed it already
	if err != nil {
		return nil, nil, err
	}
	if next.Subject.CommonName != r.name || next.NotAfter.Before(r.current.NotAfter) {
		return nil, nil, fmt.Errorf("the certificate names %q and expires %s; want %q expiring no earlier than %s",
			next.Subject.CommonName, next.NotAfter.UTC().Format(time.RFC3339), r.name, r.current.NotAfter.UTC().Format(time.RFC3339))
	}
	var files []outFile
	add := func(name string, data []byte, mode os.FileMode) {
		if _, on := r.out.host[name]; on && len(data) > 0 {
			files = append(files, outFile{name, data, mode})
		}
	}
	// The key before the certificate: a power cut in between leaves the
	// marker unmatched, and the next run writes both again.
	add(FileDeviceKey, key, 0o600)
	add(FileCACert, []byte(rn.CAChain), 0o644)
	add(FileDeviceCert, []byte(rn.Certificate), 0o644)
	return files, next, nil
}

// write records the marker, then writes the files, each atomically.
func (r *renewal) write(files []outFile, m renewMarker) error {
	if err := writeFileAtomic(r.markerPath(), []byte(m.serial+" "+m.sum+"\n"), 0o644); err != nil {
		return err
	}
	if _, err := writeFiles(r.out, files, r.cfg.checkpoint); err != nil {
		return fmt.Errorf("write renewed certificate: %w", err)
	}
	return nil
}

// confirm tells the server the renewed certificate is on disk, so it
// revokes the old one, then drops the marker. A confirmation that cannot
// get through now is left for the next run: the new certificate is in use
// either way.
func (r *renewal) confirm(ctx context.Context, serial string) error {
	err := r.retry.do(ctx, "confirm renewal", func(ctx context.Context) error {
		return r.client.post(ctx, protocol.PathRenewAck, protocol.RenewAckRequest{Serial: serial}, nil)
	})
	if transient, _ := retryHint(err); err != nil && (transient || ctx.Err() != nil) {
		r.log.Warn("could not confirm the renewal to the server; the next run tries again (the old certificate stays valid until then)", "err", err)
		return nil
	}
	if err != nil {
		r.log.Warn("server refused the confirmation of the renewal; not retrying", "err", err)
	} else {
		r.log.Info("renewal confirmed; the server revokes the old certificate", "serial", serial)
	}
	return removeDurably(r.markerPath())
}

// restart runs the commands that make services pick up the certificate:
// --restart-cmd if given, else the IoT Edge apply (when config.toml is
// there) and the extra commands. Mender does not use the certificate.
func (r *renewal) restart(ctx context.Context) error {
	cmds := r.cfg.renewCommands(r.out)
	if len(cmds) == 0 {
		return nil
	}
	return runRestarts(ctx, r.log, cmds, restartEnv{name: r.name, outDir: r.out.outDir, configToml: r.out.host[FileConfigToml]})
}

func (c *Config) renewCommands(out *outputs) []string {
	if c.NoRestart {
		return nil
	}
	if c.RestartCommands != nil {
		return c.RestartCommands
	}
	toml := false
	if p := out.host[FileConfigToml]; p != "" {
		_, err := os.Stat(p)
		toml = err == nil
	}
	cmds := c.iotEdgeRestart(c.Logger, out, toml)
	for _, e := range c.Restart.Extra {
		if e != "" {
			cmds = append(cmds, e)
		}
	}
	return cmds
}

// formatSerial spells a certificate's serial as Vault does: colon-separated
// lower-case hex bytes.
func formatSerial(c *x509.Certificate) string {
	b := c.SerialNumber.Bytes()
	parts := make([]string, len(b))
	for i, v := range b {
		parts[i] = fmt.Sprintf("%02x", v)
	}
	return strings.Join(parts, ":")
}
