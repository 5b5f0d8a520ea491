package azure

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"gatehouse"
	"gatehouse/rest"
)

var _ gatehouse.DPS = (*DPS)(nil)

// Defaults for DPSConfig.
const (
	DefaultDPSAPIVersion = "2021-10-01"
	// DefaultDPSRateLimit is the documented "Operations 1,000/min/service".
	DefaultDPSRateLimit = 1000
)

// DPSConfig configures a client of one DPS instance's service API.
type DPSConfig struct {
	// ConnectionString is a shared access policy with EnrollmentRead,
	// EnrollmentWrite, RegistrationStatusRead and, to decommission,
	// RegistrationStatusWrite (e.g. provisioningserviceowner).
	ConnectionString ConnectionString
	// Endpoint is the base URL; default "https://" + HostName. Tests point it
	// at a simulator; tokens are still signed for HostName.
	Endpoint string
	// IDScope is the scope devices register under. Required: the service API
	// does not return it (the portal's Overview page shows it).
	IDScope string
	// APIVersion defaults to DefaultDPSAPIVersion.
	APIVersion string
	// RateLimit is calls per minute; default DefaultDPSRateLimit.
	RateLimit int
	// RateWindow is the window RateLimit counts in; default a minute, as
	// Azure's quotas are given. Tests shrink both to reach a quota quickly.
	RateWindow time.Duration
	// Timeout bounds one attempt; default 30 s.
	Timeout time.Duration
	// Retries of a throttled or failed call; default 4, negative for none.
	Retries int
	// HTTP sends requests; default rest.Transport.
	HTTP *http.Client
	// UserAgent names gatehouse to the service.
	UserAgent string
	// Logger receives a debug line per HTTP attempt (method, path, status);
	// nil logs nothing.
	Logger *slog.Logger
}

// Validate reports a missing or malformed setting.
func (c DPSConfig) Validate() error {
	if err := c.ConnectionString.Validate(); err != nil {
		return fmt.Errorf("dps: %w", err)
	}
	if c.IDScope == "" {
		return errors.New("dps: IDScope is required (the service API does not return it; copy it from the DPS overview)")
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint); err != nil {
			return fmt.Errorf("dps: %w", err)
		}
	}
	if c.RateLimit < 0 || c.Timeout < 0 || c.RateWindow < 0 {
		return errors.New("dps: RateLimit, RateWindow and Timeout must not be negative")
	}
	return nil
}

// DPS is a client of the DPS service API for individual enrollments with
// symmetric-key attestation. It is safe for concurrent use.
type DPS struct {
	idScope string
	c       *caller
}

// Quotas is the DPS instance's call budget, for sharing among replicas.
func (d *DPS) Quotas() []*rest.Quota { return []*rest.Quota{d.c.quota} }

// NewDPS returns a client for cfg.
func NewDPS(cfg DPSConfig) (*DPS, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &DPS{idScope: cfg.IDScope, c: newCaller(cfg.ConnectionString, options{
		service:    "dps",
		baseURL:    cmp.Or(cfg.Endpoint, "https://"+cfg.ConnectionString.HostName),
		apiVersion: cmp.Or(cfg.APIVersion, DefaultDPSAPIVersion),
		rateLimit:  cmp.Or(cfg.RateLimit, DefaultDPSRateLimit),
		rateWindow: cmp.Or(cfg.RateWindow, time.Minute),
		timeout:    cfg.Timeout,
		retries:    cfg.Retries,
		http:       cfg.HTTP,
		userAgent:  cfg.UserAgent,
		logger:     cfg.Logger,
	})}, nil
}

// IDScope returns the configured id scope.
func (d *DPS) IDScope() string { return d.idScope }

// GetEnrollment reads an individual enrollment. A missing one is an error
// wrapping gatehouse.ErrBackendNotFound.
func (d *DPS) GetEnrollment(ctx context.Context, registrationID string) (gatehouse.Enrollment, error) {
	if err := checkID("dps", "registration id", registrationID); err != nil {
		return gatehouse.Enrollment{}, err
	}
	resp, err := d.c.do(ctx, rest.Request{Method: http.MethodGet, Path: d.c.path("/enrollments/%s", registrationID)})
	if err != nil {
		return gatehouse.Enrollment{}, err
	}
	var ej enrollmentJSON
	if err := resp.JSON(&ej); err != nil {
		return gatehouse.Enrollment{}, fmt.Errorf("dps: enrollment %q: %w", registrationID, err)
	}
	e := ej.domain()
	if ej.Attestation.Type != "symmetricKey" || (e.PrimaryKey != "" && e.SecondaryKey != "") {
		return e, nil
	}
	// Some service versions leave the keys out of GET (the az CLI has
	// --show-keys for this); the attestation mechanism call returns them.
	return d.withKeys(ctx, e)
}

func (d *DPS) withKeys(ctx context.Context, e gatehouse.Enrollment) (gatehouse.Enrollment, error) {
	resp, err := d.c.do(ctx, rest.Request{Method: http.MethodPost,
		Path: d.c.path("/enrollments/%s/attestationmechanism", e.RegistrationID)})
	if err != nil {
		return gatehouse.Enrollment{}, err
	}
	var a attestationJSON
	if err := resp.JSON(&a); err != nil {
		return gatehouse.Enrollment{}, fmt.Errorf("dps: attestation of %q: %w", e.RegistrationID, err)
	}
	if a.SymmetricKey != nil {
		e.PrimaryKey, e.SecondaryKey = a.SymmetricKey.PrimaryKey, a.SymmetricKey.SecondaryKey
	}
	return e, nil
}

// ErrReplacedEnrollment reports that a PUT without If-Match replaced an
// enrollment that existed already, as a service answering create-or-update
// rather than 409 does. The enrollment now holds the keys sent.
var ErrReplacedEnrollment = errors.New("the PUT replaced an enrollment that already existed")

// CreateEnrollment creates or replaces an enrollment (PUT). With e.ETag set
// it only replaces that version (If-Match); a newer one makes a 412 error.
// A 409 (the service refusing to overwrite) wraps gatehouse.ErrBackendExists.
// Without e.ETag the PUT is not repeated after a failure that may have
// acted (a lost answer), and an answer showing an older enrollment was
// replaced returns what is stored now with an error wrapping
// ErrReplacedEnrollment.
func (d *DPS) CreateEnrollment(ctx context.Context, e gatehouse.Enrollment) (gatehouse.Enrollment, error) {
	if err := checkID("dps", "registration id", e.RegistrationID); err != nil {
		return gatehouse.Enrollment{}, err
	}
	req := rest.Request{Method: http.MethodPut, Path: d.c.path("/enrollments/%s", e.RegistrationID), Body: newEnrollmentJSON(e),
		Secrets: []string{e.PrimaryKey, e.SecondaryKey}}
	if e.ETag != "" {
		req.Header = map[string]string{"If-Match": e.ETag}
	} else {
		// Sent again after its answer was lost, a PUT that replaces would
		// look like one replacing someone else's enrollment; the caller
		// reads instead (DPSBackend.create).
		req.Unsafe = true
	}
	resp, err := d.c.do(ctx, req)
	if err != nil {
		return gatehouse.Enrollment{}, err
	}
	var ej enrollmentJSON
	if err := resp.JSON(&ej); err != nil {
		return gatehouse.Enrollment{}, fmt.Errorf("dps: enrollment %q: %w", e.RegistrationID, err)
	}
	stored := ej.domain()
	if stored.PrimaryKey == "" && stored.SecondaryKey == "" {
		// An answer without keys still stored the ones we sent.
		stored.PrimaryKey, stored.SecondaryKey = e.PrimaryKey, e.SecondaryKey
	}
	if replaced, why := ej.replaced(); replaced && e.ETag == "" {
		return stored, fmt.Errorf("enrollment %q: %w (%s)", e.RegistrationID, ErrReplacedEnrollment, why)
	}
	return stored, nil
}

// DeleteEnrollment deletes an enrollment; a missing one is an error wrapping
// gatehouse.ErrBackendNotFound. The device's hub identity stays.
func (d *DPS) DeleteEnrollment(ctx context.Context, registrationID string) error {
	if err := checkID("dps", "registration id", registrationID); err != nil {
		return err
	}
	_, err := d.c.do(ctx, rest.Request{Method: http.MethodDelete, Path: d.c.path("/enrollments/%s", registrationID)})
	return err
}

// DeleteRegistration deletes a device's registration state record
// (DELETE /registrations/{id}); a missing one is an error wrapping
// gatehouse.ErrBackendNotFound. The hub identity stays.
func (d *DPS) DeleteRegistration(ctx context.Context, registrationID string) error {
	if err := checkID("dps", "registration id", registrationID); err != nil {
		return err
	}
	_, err := d.c.do(ctx, rest.Request{Method: http.MethodDelete, Path: d.c.path("/registrations/%s", registrationID)})
	return err
}

// Registration returns where DPS assigned a device. Before the device has
// registered it is an error wrapping gatehouse.ErrBackendNotFound.
func (d *DPS) Registration(ctx context.Context, registrationID string) (gatehouse.Registration, error) {
	if err := checkID("dps", "registration id", registrationID); err != nil {
		return gatehouse.Registration{}, err
	}
	resp, err := d.c.do(ctx, rest.Request{Method: http.MethodGet, Path: d.c.path("/registrations/%s", registrationID)})
	if err != nil {
		return gatehouse.Registration{}, err
	}
	var r registrationJSON
	if err := resp.JSON(&r); err != nil {
		return gatehouse.Registration{}, fmt.Errorf("dps: registration %q: %w", registrationID, err)
	}
	return r.domain(), nil
}

// Check makes one cheap authenticated call (a one-item enrollment query),
// so bad credentials show at startup rather than at the first approval.
func (d *DPS) Check(ctx context.Context) error {
	_, err := d.c.do(ctx, rest.Request{
		Method: http.MethodPost, Path: d.c.path("/enrollments/query"),
		Body: map[string]string{"query": "*"}, Header: map[string]string{"x-ms-max-item-count": "1"},
	})
	if err != nil {
		return fmt.Errorf("dps: check credentials for %s: %w", d.c.signer.cs.HostName, err)
	}
	return nil
}

// checkID refuses ids that would change the request path's meaning.
func checkID(service, what, id string) error {
	if id == "" || id == "." || id == ".." {
		return fmt.Errorf("%s: %s %q is not valid", service, what, id)
	}
	return nil
}
