package agent

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"time"

	"gatehouse"
)

// Defaults for Config fields left empty.
const (
	DefaultKeyPath   = "/var/lib/mender/mender-agent.pem"
	DefaultOutDir    = "/var/lib/gatehouse"
	DefaultSysfsRoot = "/sys"

	defaultBackoffMin = time.Second
	defaultBackoffMax = time.Minute
)

// Config configures one run of the agent. The zero value of every field but
// Server is usable.
type Config struct {
	// Server is the base URL of the gatehouse server, e.g. https://gatehouse.example.com.
	Server string
	// KeyPath is the Mender device key (PEM). Default DefaultKeyPath.
	KeyPath string
	// OutDir receives the credential files; created 0700 if missing. Default DefaultOutDir.
	OutDir string
	// MAC overrides the discovered MAC address sent as the device's claim.
	MAC string
	// Interface names the network interface whose MAC is sent. Default: the
	// Ethernet interface with the lowest ifindex.
	Interface string
	// RestartCommands run with `sh -c`, in order, after the files are written.
	// nil means the defaults (see DefaultRestartCommands); an empty non-nil
	// slice runs nothing.
	RestartCommands []string
	// NoRestart disables restart commands, including the defaults.
	NoRestart bool
	// Once enrolls and waits for one long-poll round only; a gateway that is
	// not provisioned by then is an ExitPending error.
	Once bool
	// AgentVersion is reported to the server and in the User-Agent.
	AgentVersion string

	// HTTPClient talks to the server. Default: NewHTTPClient().
	HTTPClient *http.Client
	// Logger receives progress. Default slog.Default(). Secrets are never logged.
	Logger *slog.Logger
	// Now is the clock used for request timestamps. Default time.Now.
	Now func() time.Time
	// BackoffMin and BackoffMax bound the exponential backoff (full jitter)
	// between retries. Defaults 1 s and 60 s.
	BackoffMin, BackoffMax time.Duration
	// SysfsRoot is where sysfs is mounted, for MAC discovery. Default "/sys".
	SysfsRoot string
}

// Validate checks the configuration. Its errors carry ExitConfig.
func (c *Config) Validate() error {
	if err := validateServer(c.Server); err != nil {
		return &ExitError{Code: ExitConfig, Err: err}
	}
	if c.MAC != "" && c.Interface != "" {
		return exitErrorf(ExitConfig, "use either --mac or --interface, not both")
	}
	if c.MAC != "" {
		if _, err := gatehouse.NormalizeMAC(c.MAC); err != nil {
			return exitErrorf(ExitConfig, "--mac: %s", gatehouse.ErrorMessage(err))
		}
	}
	if c.BackoffMin < 0 || c.BackoffMax < 0 || (c.BackoffMax > 0 && c.BackoffMin > c.BackoffMax) {
		return exitErrorf(ExitConfig, "invalid backoff bounds %v..%v", c.BackoffMin, c.BackoffMax)
	}
	return nil
}

func validateServer(s string) error {
	if s == "" {
		return errors.New("missing --server (or GATEHOUSE_SERVER): the URL of the gatehouse server")
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
	if c.KeyPath == "" {
		c.KeyPath = DefaultKeyPath
	}
	if c.OutDir == "" {
		c.OutDir = DefaultOutDir
	}
	if c.SysfsRoot == "" {
		c.SysfsRoot = DefaultSysfsRoot
	}
	if c.HTTPClient == nil {
		c.HTTPClient = NewHTTPClient()
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

// restartCommands resolves the commands to run after provisioning.
func (c *Config) restartCommands() []string {
	if c.NoRestart {
		return nil
	}
	if c.RestartCommands != nil {
		return c.RestartCommands
	}
	return DefaultRestartCommands(exec.LookPath)
}

// DefaultRestartCommands restarts the Mender services (so they pick up the
// preauthorized key) and applies the IoT Edge configuration. A tool missing
// from PATH means that part of the stack is not on this image, so its command
// is left out rather than failing every run.
func DefaultRestartCommands(lookPath func(string) (string, error)) []string {
	var cmds []string
	if _, err := lookPath("systemctl"); err == nil {
		cmds = append(cmds, "systemctl try-restart mender-authd mender-client")
	}
	if _, err := lookPath("iotedge"); err == nil {
		cmds = append(cmds, "iotedge config apply")
	}
	return cmds
}

// NewHTTPClient returns a client suited to the long poll: the server may hold
// a wait request ~30 s, so response timeouts sit well above that, while
// connecting stays quick to fail so retries start early.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 50 * time.Second
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}
