package agent

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"gatehouse"
)

// Defaults for Config fields left empty.
const (
	DefaultKeyPath    = "/var/lib/mender/mender-agent.pem"
	DefaultMenderConf = "/etc/mender/mender.conf"
	DefaultOutDir     = "/var/lib/gatehouse"
	DefaultSysfsRoot  = "/sys"
	// DefaultDPSEndpoint is the global device endpoint of Azure DPS.
	DefaultDPSEndpoint = "https://global.azure-devices-provisioning.net"

	defaultBackoffMin = time.Second
	defaultBackoffMax = time.Minute
)

// Values of Restart.Mender and Restart.IoTEdge besides a command.
const (
	RestartAuto = "auto"
	RestartNone = "none"
)

// PathNone as a Paths field leaves that output out.
const PathNone = "none"

// IoT Edge attestation methods for config.toml.
const (
	AttestSymmetricKey = "symmetric_key"
	AttestX509         = "x509"
)

// Config configures one run of the agent. The zero value of every field but
// Server is usable.
type Config struct {
	// Server is the base URL of the gatehouse server, e.g. https://gatehouse.example.com.
	Server string
	// KeyPath is the Mender device key (PEM). Default: Security.AuthPrivateKey
	// from MenderConf when it names a file, else DefaultKeyPath (or
	// $MENDER_DATASTORE_DIR/mender-agent.pem).
	KeyPath string
	// MenderConf is Mender's configuration file, read for the key location
	// when KeyPath is empty. Default DefaultMenderConf; Mender's fallback
	// file /var/lib/mender/mender.conf is read after it, as Mender does.
	MenderConf string
	// WaitForKey makes a missing (or still empty) key a wait, with a log
	// line, instead of an ExitKey error: on first boot the agent may start
	// before Mender has generated its key.
	WaitForKey bool
	// OutDir receives the credential files; created 0700 if missing. Default DefaultOutDir.
	OutDir string
	// Paths maps each output to a file; empty fields mean OutDir/<file>.
	Paths Paths
	// ConfigToml shapes the IoT Edge config.toml output.
	ConfigToml ConfigToml
	// MAC overrides the discovered MAC address sent as the device's claim.
	MAC string
	// Interface names the network interface whose MAC is sent. Default: the
	// Ethernet interface with the lowest ifindex, as Mender's identity script picks.
	Interface string
	// IdentityScript is run and the value of its mac= line is the MAC
	// claim: Mender's /usr/share/mender/identity/mender-device-identity
	// gives exactly the identity the Mender client reports.
	IdentityScript string
	// RestartCommands run with `sh -c`, in order, after the files are written.
	// nil means the commands Restart selects; an empty non-nil slice runs nothing.
	RestartCommands []string
	// Restart selects the default restart commands.
	Restart Restart
	// NoRestart disables restart commands, including the defaults.
	NoRestart bool
	// Once enrolls and waits for one long-poll round only; a gateway that is
	// not provisioned by then is an ExitPending error.
	Once bool
	// Force provisions again although device-name says the gateway is
	// provisioned. Without it such a run exits at once with success.
	Force bool
	// AgentVersion is reported to the server and in the User-Agent.
	AgentVersion string

	// Root is where the gateway's file system is mounted: every path the
	// agent reads or writes (key, Mender config, outputs, template, sysfs,
	// systemd unit directories) is taken below it. Commands (identity
	// script, restarts) run unchanged. For tests; default "" is "/".
	Root string
	// Banner receives the verification code and key fingerprint as plain
	// lines as soon as the server has answered the enrollment with the
	// code, for the operator at the console.
	Banner io.Writer
	// Checkpoint, when set, is called with the name of each point where a
	// power cut leaves a distinct state on disk ("after-bundle",
	// "mid-write:<file>", "before-ack", "after-ack", "before-restart",
	// "after-restart"); the crash tests kill the process there.
	Checkpoint func(point string)

	// InsecureHTTP allows an http:// Server. Without TLS nothing proves an
	// answer came from our server, so a man in the middle could hand the
	// gateway credentials of its choosing; only for labs, demos and tests.
	// Loopback addresses need it too.
	InsecureHTTP bool
	// ServerCA is a PEM bundle of CA certificates trusted for the server
	// INSTEAD of the system roots (a private CA should not share trust
	// with every public one). Default "": the system roots.
	ServerCA string
	// ServerPin, when set, is "sha256/BASE64" of the server certificate's
	// SubjectPublicKeyInfo, checked on every connection on top of normal
	// verification. Several pins, comma-separated, allow a key rollover.
	ServerPin string

	// HTTPClient talks to the server. Default: NewHTTPClient() with
	// ServerCA and ServerPin applied; these two cannot be combined with a
	// custom HTTPClient, which brings its own TLS settings.
	HTTPClient *http.Client
	// Logger receives progress. Default slog.Default(). Secrets are never logged.
	Logger *slog.Logger
	// Now is the clock used for request timestamps. Default time.Now.
	Now func() time.Time
	// BackoffMin and BackoffMax bound the exponential backoff (full jitter)
	// between retries. Defaults 1 s and 60 s.
	BackoffMin, BackoffMax time.Duration
	// SysfsRoot is where sysfs is mounted, for MAC discovery (below Root).
	// Default "/sys".
	SysfsRoot string
}

// Paths maps the outputs to files. A relative path is taken inside OutDir,
// "" means the output's default name inside OutDir and PathNone ("none")
// leaves that output out (not allowed for DeviceName).
type Paths struct {
	DeviceName, IoTEdgeEnv, DeviceCert, DeviceKey, CACert, ConfigToml string
}

// ConfigToml shapes the IoT Edge 1.5 config.toml.
type ConfigToml struct {
	// Template is a text/template file replacing the built-in template; see
	// docs/agent.md for the fields and functions it may use.
	Template string
	// GlobalEndpoint is the DPS device endpoint. Default DefaultDPSEndpoint.
	GlobalEndpoint string
	// Attestation is AttestSymmetricKey (default) or AttestX509, which
	// presents device.crt and device.key to DPS instead; that needs an X.509
	// enrollment (group) in DPS for the PKI's CA.
	Attestation string
}

// Restart selects the commands run after provisioning when
// Config.RestartCommands is nil.
type Restart struct {
	// Mender is RestartAuto (default: restart mender-authd for Mender
	// 4.x/5.x and/or mender-client for 3.x, whichever unit is installed),
	// RestartNone, or a command.
	Mender string
	// IoTEdge is RestartAuto (default: `iotedge config apply` when iotedge is
	// installed and config.toml was written, else IoTEdgeFallback),
	// RestartNone, or a command.
	IoTEdge string
	// IoTEdgeFallback runs in place of `iotedge config apply` on gateways
	// without the iotedge tool, e.g. "docker restart iotedge".
	IoTEdgeFallback string
	// Extra commands run after the others, e.g. to restart an application.
	Extra []string
}

// Validate checks the configuration. Its errors carry ExitConfig.
func (c *Config) Validate() error {
	if err := validateServer(c.Server); err != nil {
		return &ExitError{Code: ExitConfig, Err: err}
	}
	if err := c.validateTransport(); err != nil {
		return &ExitError{Code: ExitConfig, Err: err}
	}
	if err := c.validateIdentity(); err != nil {
		return err
	}
	if c.BackoffMin < 0 || c.BackoffMax < 0 || (c.BackoffMax > 0 && c.BackoffMin > c.BackoffMax) {
		return exitErrorf(ExitConfig, "invalid backoff bounds %v..%v", c.BackoffMin, c.BackoffMax)
	}
	if c.Paths.DeviceName == PathNone {
		return exitErrorf(ExitConfig, "device-name cannot be switched off: it marks the gateway as provisioned")
	}
	switch c.ConfigToml.Attestation {
	case "", AttestSymmetricKey, AttestX509:
	default:
		return exitErrorf(ExitConfig, "invalid IoT Edge attestation %s: want %s or %s", quote(c.ConfigToml.Attestation), AttestSymmetricKey, AttestX509)
	}
	return nil
}

// validateIdentity allows at most one way of choosing the MAC.
func (c *Config) validateIdentity() error {
	n := 0
	for _, s := range []string{c.MAC, c.Interface, c.IdentityScript} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return exitErrorf(ExitConfig, "use only one of --mac, --interface and --identity-script")
	}
	if c.MAC != "" {
		if _, err := gatehouse.NormalizeMAC(c.MAC); err != nil {
			return exitErrorf(ExitConfig, "--mac: %s", gatehouse.ErrorMessage(err))
		}
	}
	return nil
}

func validateServer(s string) error {
	if s == "" {
		return errors.New("missing --server (or GATEHOUSE_SERVER, or SERVER in the config file): the URL of the gatehouse server")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("invalid --server " + quote(s) + ": want an http(s) URL such as https://gatehouse.example.com")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("invalid --server " + quote(s) + ": no query or fragment allowed")
	}
	return nil
}

func quote(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return `"` + s + `"`
}

// withDefaults returns a copy of c with empty fields filled in.
func (c Config) withDefaults() Config {
	if c.OutDir == "" {
		c.OutDir = DefaultOutDir
	}
	if c.MenderConf == "" {
		c.MenderConf = DefaultMenderConf
	}
	if c.ConfigToml.GlobalEndpoint == "" {
		c.ConfigToml.GlobalEndpoint = DefaultDPSEndpoint
	}
	if c.ConfigToml.Attestation == "" {
		c.ConfigToml.Attestation = AttestSymmetricKey
	}
	if c.SysfsRoot == "" {
		c.SysfsRoot = DefaultSysfsRoot
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = defaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = max(defaultBackoffMax, c.BackoffMin)
	}
	return c
}

// hostPath maps a path on the gateway to where it is for this process.
func (c *Config) hostPath(p string) string {
	if c.Root == "" || p == "" {
		return p
	}
	return filepath.Join(c.Root, p)
}

// checkpoint reports a crash-test point.
func (c *Config) checkpoint(point string) {
	if c.Checkpoint != nil {
		c.Checkpoint(point)
	}
}

// NewHTTPClient returns a client suited to the long poll: the server may hold
// a wait request ~30 s, so response timeouts sit well above that, while
// connecting stays quick to fail so retries start early. Proxies come from
// HTTPS_PROXY, HTTP_PROXY and NO_PROXY, as gateways behind a corporate
// proxy need.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 50 * time.Second
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}
