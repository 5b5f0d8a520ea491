// Package agent is the gateway side of gatehouse: it enrolls the device with
// its Mender key, waits for an operator to approve it, writes the credentials
// it receives and restarts the services that use them.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"text/template"
	"time"

	"gatehouse"
	"gatehouse/protocol"
)

// Result is what a successful run provisioned.
type Result struct {
	Name        string
	DeviceID    string
	Fingerprint string   // lower-case hex SHA-256 of the key's SPKI
	Files       []string // paths written, device-name last
}

// Run enrolls the gateway and blocks until it is provisioned (or, with
// cfg.Once, for one long-poll round), then writes the credentials, confirms
// receipt and runs the restart commands. A gateway whose device-name exists
// is provisioned already: unless cfg.Force, Run does not enroll again; it
// only finishes what an interrupted run left (confirming receipt, restarts).
// Errors carry an exit code; see ExitCode. A non-nil Result comes with an
// ExitRestart error when the files were written but a restart command failed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	s, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	prior, err := s.priorRun()
	if err != nil {
		return nil, err
	}
	if prior != nil {
		return s.resume(ctx, prior)
	}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	if err := s.findMAC(ctx); err != nil {
		return nil, err
	}
	st, err := s.enroll(ctx)
	if err != nil {
		return nil, err
	}
	if st, err = s.awaitBundle(ctx, st); err != nil {
		return nil, err
	}
	return s.install(ctx, st)
}

// session is one run's state.
type session struct {
	cfg       Config
	log       *slog.Logger
	out       *outputs
	tmpl      *template.Template
	id        *identity
	mac       string
	client    *client
	retry     *retrier
	lastState string // last state logged, to log changes only
}

// prepare checks everything that needs neither key nor network, so a bad
// configuration fails at once with ExitConfig.
func prepare(cfg Config) (*session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := cfg.setupHTTPClient(); err != nil {
		return nil, err
	}
	out, err := resolveOutputs(&cfg)
	if err != nil {
		return nil, err
	}
	tmpl, err := loadEdgeTemplate(&cfg)
	if err != nil {
		return nil, err
	}
	s := &session{cfg: cfg, log: cfg.Logger, out: out, tmpl: tmpl}
	s.retry = &retrier{backoff: backoff{min: cfg.BackoffMin, max: cfg.BackoffMax}, log: s.log}
	if cfg.Once {
		s.retry.limit = onceAttempts
	}
	out.cleanTemps(s.log)
	return s, nil
}

// connect loads the device key (waiting for it if configured) and sets up
// the signed client.
func (s *session) connect(ctx context.Context) error {
	loc, err := findKey(&s.cfg)
	if err != nil {
		return err
	}
	if s.id, err = awaitIdentity(ctx, s.log, loc, s.cfg.WaitForKey); err != nil {
		return err
	}
	s.log.Info("key fingerprint sha256:"+s.id.fingerprint, "key", loc.device, "key_from", loc.source, "key_type", s.id.keyType)
	if s.client, err = newClient(s.cfg.Server, s.id.key, &s.cfg); err != nil {
		return &ExitError{Code: ExitConfig, Err: err}
	}
	warnPlainHTTP(s.log, s.client.base)
	return nil
}

// findMAC settles the MAC claim sent with the enrollment.
func (s *session) findMAC(ctx context.Context) error {
	var err error
	if s.cfg.IdentityScript != "" {
		s.mac, err = scriptMAC(ctx, s.cfg.IdentityScript)
		return err
	}
	if s.mac, err = findMAC(s.cfg.hostPath(s.cfg.SysfsRoot), s.cfg.Interface, s.cfg.MAC); err != nil {
		return macError(s.cfg, err)
	}
	return nil
}

func macError(cfg Config, err error) error {
	if cfg.Interface != "" {
		return exitErrorf(ExitConfig, "--interface: %w", err)
	}
	return fmt.Errorf("find MAC address: %w", err)
}

// warnPlainHTTP: Validate refuses plain HTTP unless InsecureHTTP allows it;
// even then a non-loopback server gets a reminder in the log, since nothing
// proves the answers came from our server.
func warnPlainHTTP(log *slog.Logger, u *url.URL) {
	if u.Scheme != "http" {
		return
	}
	if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
		return
	}
	log.Warn("server URL uses plain http: answers are not authenticated, use https outside a lab", "server", u.String())
}

// enroll introduces the device; for a known key it refreshes last-seen.
func (s *session) enroll(ctx context.Context) (*protocol.Status, error) {
	host, _ := os.Hostname()
	req := protocol.EnrollRequest{
		MAC:          s.mac,
		SealKey:      s.id.sealKey.PublicKey().Bytes(),
		CSR:          s.id.csr,
		Hostname:     host,
		AgentVersion: s.cfg.AgentVersion,
	}
	s.log.Info("enrolling", "server", s.cfg.Server, "mac", s.mac, "mac_from", describeMACSource(&s.cfg))
	var st protocol.Status
	err := s.retry.do(ctx, "enroll", func(ctx context.Context) error {
		return s.client.post(ctx, protocol.PathEnroll, req, &st)
	})
	if err != nil {
		return nil, s.requestError("enroll", err)
	}
	s.showCode(st.VerificationCode)
	return &st, nil
}

// showCode prints the verification code the server answered our signed
// enrollment with. The code is keyed with a secret only the server holds,
// so nobody (this agent included) can compute it from the key: an attacker
// cannot grind a key offline to match a real gateway's code. The operator
// compares this console's code with the one the server shows, and a
// match means the pending row is this key.
func (s *session) showCode(code string) {
	if code == "" {
		s.log.Warn("the server sent no verification code; compare the key fingerprint instead",
			"fingerprint", s.id.fingerprint)
		code = "(none)"
	} else {
		// Written as the page and the CLI write it ("557 546"), so the
		// operator compares like with like.
		code = protocol.FormatCode(code)
		s.log.Info(fmt.Sprintf("verification code %s, key fingerprint sha256:%s", code, s.id.fingerprint))
	}
	if s.cfg.Banner != nil {
		fmt.Fprintf(s.cfg.Banner, "gatehouse-agent: verification code %s\ngatehouse-agent: key fingerprint sha256:%s (%s)\n",
			code, s.id.fingerprint, s.id.keyType)
	}
}

// wait is one long-poll round. A server that forgot us (404, e.g. after a
// restore) gets a fresh enrollment instead of an endless error loop.
func (s *session) wait(ctx context.Context, state string) (*protocol.Status, error) {
	var st protocol.Status
	err := s.retry.do(ctx, "wait", func(ctx context.Context) error {
		return s.client.post(ctx, protocol.PathWait, protocol.WaitRequest{State: state}, &st)
	})
	var se *ServerError
	if errors.As(err, &se) && se.Status == 404 {
		s.log.Warn("server does not know this gateway any more, enrolling again", "err", err)
		return s.enroll(ctx)
	}
	if err != nil {
		return nil, s.requestError("wait", err)
	}
	return &st, nil
}

// awaitBundle long-polls until the bundle arrives or the state says stop.
func (s *session) awaitBundle(ctx context.Context, st *protocol.Status) (*protocol.Status, error) {
	for rounds := 0; ; rounds++ {
		s.logState(st)
		if err := stopState(st); err != nil {
			return nil, err
		}
		// The server sends a bundle only once every step is done, whatever
		// came after (configured, or stalled while this box was off).
		if st.Bundle != nil {
			return st, nil
		}
		if s.cfg.Once && rounds == 1 {
			return nil, exitErrorf(ExitPending, "still pending: gateway is %s, not provisioned yet (verification code %s)", st.State, protocol.FormatCode(st.VerificationCode))
		}
		start := time.Now()
		next, err := s.wait(ctx, st.State)
		if err != nil {
			return nil, err
		}
		if err := s.pace(ctx, st, next, time.Since(start)); err != nil {
			return nil, err
		}
		st = next
	}
}

// pace guards against a server (or proxy) that answers a long poll at once
// with nothing new: without it the agent would spin. A server that did not
// hold the wait says when to ask again (poll_after), capped like a
// Retry-After so a bogus value cannot park the gateway for long.
func (s *session) pace(ctx context.Context, prev, next *protocol.Status, took time.Duration) error {
	if next.State != prev.State || next.Bundle != nil {
		return nil
	}
	if next.PollAfter > 0 {
		d := min(time.Duration(next.PollAfter)*time.Second, maxRetryAfter)
		s.log.Debug("the server paces its waiting gateways; asking again later", "in", d)
		return sleep(ctx, d)
	}
	if took >= s.cfg.BackoffMin {
		return nil
	}
	return sleep(ctx, s.cfg.BackoffMin)
}

// stopState turns the states that end the agent's job into errors.
func stopState(st *protocol.Status) error {
	switch gatehouse.State(st.State) {
	case gatehouse.StateDismissed:
		return exitErrorf(ExitDismissed, "an operator dismissed this gateway%s; it will not be provisioned", reason(st))
	case gatehouse.StateDecommissioned:
		return exitErrorf(ExitDismissed, "gateway %s was decommissioned%s; re-key or re-approve it to provision again", st.Name, reason(st))
	}
	return nil
}

func reason(st *protocol.Status) string {
	if st.Reason == "" {
		return ""
	}
	return " (" + st.Reason + ")"
}

// logState tells whoever watches the console what the gateway is waiting for,
// once per change.
func (s *session) logState(st *protocol.Status) {
	key := st.State + "\x00" + st.Name + "\x00" + st.Reason
	if key == s.lastState {
		return
	}
	s.lastState = key
	log := s.log.With("state", st.State, "device_id", st.DeviceID)
	switch gatehouse.State(st.State) {
	case gatehouse.StatePending:
		log.Info("pending: waiting for an operator to approve this gateway", "verification_code", protocol.FormatCode(st.VerificationCode))
	case gatehouse.StateApproved:
		log.Info(fmt.Sprintf("approved as %s: waiting for provisioning", st.Name))
	case gatehouse.StateProvisioning:
		log.Info(fmt.Sprintf("provisioning %s in the backends", st.Name))
	case gatehouse.StateFailed:
		log.Warn(fmt.Sprintf("provisioning %s failed, the server is retrying", st.Name), "reason", st.Reason)
	case gatehouse.StateProvisioned, gatehouse.StateConfigured, gatehouse.StateStalled:
		s.logProvisioned(log, st)
	case gatehouse.StateDismissed, gatehouse.StateDecommissioned:
		log.Error(st.State, "reason", st.Reason)
	default:
		log.Warn("unknown state, waiting", "reason", st.Reason)
	}
}

func (s *session) logProvisioned(log *slog.Logger, st *protocol.Status) {
	if st.Bundle != nil {
		log.Info("received credentials for " + st.Bundle.Name)
		return
	}
	log.Warn(fmt.Sprintf("server reports %s as %s but holds no credentials for this key (already delivered?); "+
		"decommission or re-key it to provision again", st.Name, st.State))
}

// requestError classifies a request that failed for good.
func (s *session) requestError(what string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if ce := clockError(err); ce != nil {
		// Retrying cannot help until the clock is set, and silence would
		// leave whoever watches the console guessing: both clocks, once.
		s.log.Error("the server refuses this gateway's signatures: its clock is off",
			"agent_time", ce.Agent.UTC().Format(time.RFC3339), "server_time", ce.Server.UTC().Format(time.RFC3339),
			"skew", ce.Skew().Round(time.Second).String(), "allowed", protocol.MaxSkew.String())
		return &ExitError{Code: ExitClock, Err: fmt.Errorf("%s refused by %s: %w", what, s.cfg.Server, ce)}
	}
	var se *ServerError
	if errors.As(err, &se) && se.Status == http.StatusGone {
		// Decommissioned: the server says who did it and when, and will
		// never provision this key again, so retrying would only wait.
		return exitErrorf(ExitDismissed, "%s refused: %s (not retrying)", what, se.Message)
	}
	if errors.As(err, &se) && !se.Transient() {
		return exitErrorf(ExitServer, "%s refused by %s: %w%s", what, s.cfg.Server, err, refusalHint(se))
	}
	if transient, _ := retryHint(err); transient {
		return exitErrorf(ExitServer, "%s: server %s unreachable: %w", what, s.cfg.Server, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func refusalHint(se *ServerError) string {
	if se.Status == 401 {
		return " (check the gateway's clock: signed requests more than 5 minutes off are refused)"
	}
	return ""
}

// install writes the bundle, confirms receipt and restarts the services.
func (s *session) install(ctx context.Context, st *protocol.Status) (*Result, error) {
	s.cfg.checkpoint("after-bundle")
	creds, err := openBundle(st.Bundle, s.id)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", st.Bundle.Name, err)
	}
	l := &layout{out: s.out, tmpl: s.tmpl, toml: s.cfg.ConfigToml, log: s.log}
	files, err := l.files(creds)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", creds.name, err)
	}
	steps := pending{ack: true, restart: true, toml: hasFile(files, FileConfigToml)}
	paths, err := s.writeAll(files, steps)
	if err != nil {
		return nil, fmt.Errorf("write credentials: %w", err)
	}
	s.log.Info("wrote credentials", "dir", s.out.outDir, "files", len(paths))
	res := &Result{Name: creds.name, DeviceID: st.DeviceID, Fingerprint: s.id.fingerprint, Files: paths}
	s.cfg.checkpoint("before-ack")
	if err := s.finish(ctx, res.Name, steps); err != nil {
		return res, err
	}
	s.log.Info("provisioned as " + res.Name)
	return res, nil
}

// writeAll writes the files with the pending-steps marker just before
// device-name, so that once device-name exists a later run knows whether
// the ack and restarts still have to happen.
func (s *session) writeAll(files []outFile, steps pending) ([]string, error) {
	n := len(files) - 1 // device-name is last
	paths, err := writeFiles(s.out, files[:n], s.cfg.checkpoint)
	if err != nil {
		return nil, err
	}
	if err := steps.save(s.out.marker()); err != nil {
		return nil, err
	}
	last, err := writeFiles(s.out, files[n:], s.cfg.checkpoint)
	if err != nil {
		return nil, err
	}
	return append(paths, last...), nil
}

func hasFile(files []outFile, name string) bool {
	for _, f := range files {
		if f.name == name {
			return true
		}
	}
	return false
}

// finish runs the steps after the files are on disk, recording progress in
// the marker so a power cut repeats only what did not happen.
func (s *session) finish(ctx context.Context, name string, p pending) error {
	marker := s.out.marker()
	var cmds []string
	if p.restart {
		cmds = s.cfg.restartCommands(s.log, s.out, p.toml)
		p.restart = len(cmds) > 0
	}
	if p.ack {
		p.ack = !s.ack(ctx, name)
		s.cfg.checkpoint("after-ack")
		// Record the ack before restarts that may take minutes; with none
		// to run, the final save follows at once and this one is skipped.
		if len(cmds) > 0 {
			if err := p.save(marker); err != nil {
				return err
			}
		}
	}
	s.cfg.checkpoint("before-restart")
	var err error
	if p.restart {
		err = runRestarts(ctx, s.log, cmds, restartEnv{name: name, outDir: s.out.outDir, configToml: s.out.host[FileConfigToml]})
		p.restart = err != nil
	}
	s.cfg.checkpoint("after-restart")
	if serr := p.save(marker); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// ackAttempts bounds the ack: it is only housekeeping on the server, and
// the restarts that follow matter more to the gateway.
const ackAttempts = 5

// ack lets the server delete the sealed bundle; it reports whether that is
// settled. A transient failure leaves the ack pending for the next run; a
// refusal is final (the ciphertext left behind is useless to anyone without
// the device key).
func (s *session) ack(ctx context.Context, name string) bool {
	r := &retrier{backoff: s.retry.backoff, limit: ackAttempts, log: s.log}
	err := r.do(ctx, "ack", func(ctx context.Context) error {
		return s.client.post(ctx, protocol.PathAck, protocol.AckRequest{Name: name}, nil)
	})
	if err == nil {
		return true
	}
	if transient, _ := retryHint(err); transient || ctx.Err() != nil {
		s.log.Warn("could not confirm receipt to the server; will try again on the next run", "err", err)
		return false
	}
	s.log.Warn("server refused the confirmation of receipt; not retrying", "err", err)
	return true
}
