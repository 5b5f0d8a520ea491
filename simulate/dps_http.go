package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"gatehouse"
	"gatehouse/azure"
)

// DefaultDPSHost is the host name a DPSServer's connection string names.
// Tokens are signed for it while requests go to the server's URL.
const DefaultDPSHost = "sim-dps.azure-devices-provisioning.net"

// DPSServerOptions configures NewDPSServer.
type DPSServerOptions struct {
	// Wrap, if set, goes in front of the API, e.g. a contract.Checker's Wrap.
	Wrap func(http.Handler) http.Handler
	// State is the DPS to serve; default NewDPS(IDScope).
	State *DPS
	// IDScope is used when State is nil.
	IDScope string
	// HostName is the DPS host tokens must name; default DefaultDPSHost.
	HostName string
	// Hub links an IoT Hub simulator: registered devices appear in it.
	Hub *Hub
	// AssignDelay is how long a registration stays "assigning".
	AssignDelay time.Duration
	// ConflictOnExisting makes a PUT without If-Match on an existing
	// enrollment a 409 instead of a replacement. Which one Azure does is
	// unconfirmed, so clients should be tested against both.
	ConflictOnExisting bool
	// HideKeys leaves symmetric keys out of GET /enrollments/{id}, as some
	// service versions do; POST …/attestationmechanism still returns them.
	HideKeys bool
	// Quota, if set, throttles the service API as DPS's operations quota
	// does (see Quota).
	Quota *Quota
}

// DPSServer serves a simulated DPS over the service API's HTTP paths, with
// SAS authentication, on a loopback port. Server.Faults apply to its
// requests; State's in-process Faults do not.
type DPSServer struct {
	*Server
	State *DPS
	// ConnectionString is the server's one policy, provisioningserviceowner,
	// with a random key.
	ConnectionString azure.ConnectionString

	opts DPSServerOptions
	sas  *sasPolicies
}

// NewDPSServer starts a DPS server. Close it when done.
func NewDPSServer(opts DPSServerOptions) (*DPSServer, error) {
	if opts.State == nil {
		opts.State = NewDPS(opts.IDScope)
	}
	if opts.HostName == "" {
		opts.HostName = DefaultDPSHost
	}
	if opts.Hub != nil {
		opts.State.Hub = opts.Hub
	}
	opts.State.SetAssignDelay(opts.AssignDelay)
	s := &DPSServer{State: opts.State, opts: opts, sas: &sasPolicies{}}
	s.ConnectionString = s.sas.newPolicy(opts.HostName, "provisioningserviceowner")
	srv, err := serve(s.routes(), opts.Wrap)
	if err != nil {
		return nil, err
	}
	s.Server = srv
	return s, nil
}

// Config is a client configuration for this server.
func (s *DPSServer) Config() azure.DPSConfig {
	return azure.DPSConfig{ConnectionString: s.ConnectionString, Endpoint: s.URL, IDScope: s.State.IDScope()}
}

func (s *DPSServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /enrollments/{id}", s.getEnrollment)
	mux.HandleFunc("PUT /enrollments/{id}", s.putEnrollment)
	mux.HandleFunc("DELETE /enrollments/{id}", s.deleteEnrollment)
	mux.HandleFunc("POST /enrollments/{id}/attestationmechanism", s.attestation)
	mux.HandleFunc("POST /enrollments/query", s.query)
	mux.HandleFunc("GET /registrations/{id}", s.getRegistration)
	mux.HandleFunc("DELETE /registrations/{id}", s.deleteRegistration)
	return azGuard("dps", s.sas, s.opts.Quota.wrapIfSet(mux))
}

var apiVersionPattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(-preview)?$`)

// azGuard answers 400 without a plausible api-version and 401 without a
// valid token, before any handler runs. The token's host goes in the context.
func azGuard(service string, sas *sasPolicies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("api-version"); !apiVersionPattern.MatchString(v) {
			azWriteError(w, azErr(service, http.StatusBadRequest, 400004, nil, "the api-version query parameter is missing or malformed"))
			return
		}
		host, err := sas.verify(r)
		if err != nil {
			azWriteError(w, azErr(service, http.StatusUnauthorized, 401002, nil, "unauthorized: %v", err))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), azHostKey{}, host)))
	})
}

type azHostKey struct{}

func (s *DPSServer) getEnrollment(w http.ResponseWriter, r *http.Request) {
	s.writeEnrollment(w, r.PathValue("id"), s.opts.HideKeys)
}

func (s *DPSServer) writeEnrollment(w http.ResponseWriter, id string, hideKeys bool) {
	v, err := s.State.view(id)
	if err != nil {
		azWriteError(w, err)
		return
	}
	if hideKeys {
		v.Attestation.SymmetricKey = nil
	}
	w.Header().Set("ETag", v.ETag)
	azWriteJSON(w, http.StatusOK, v)
}

func (s *DPSServer) putEnrollment(w http.ResponseWriter, r *http.Request) {
	e, disabled, err := decodeEnrollmentPut(w, r)
	if err != nil {
		azWriteError(w, err)
		return
	}
	if _, err := s.State.put(e, r.Header.Get("If-Match"), !s.opts.ConflictOnExisting, disabled); err != nil {
		azWriteError(w, err)
		return
	}
	s.writeEnrollment(w, e.RegistrationID, false)
}

func (s *DPSServer) deleteEnrollment(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := validateRegistrationID(id); err != nil {
		azWriteError(w, err)
		return
	}
	if err := s.State.remove(id, r.Header.Get("If-Match")); err != nil {
		azWriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *DPSServer) attestation(w http.ResponseWriter, r *http.Request) {
	v, err := s.State.view(r.PathValue("id"))
	if err != nil {
		azWriteError(w, err)
		return
	}
	azWriteJSON(w, http.StatusOK, v.Attestation)
}

func (s *DPSServer) getRegistration(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := validateRegistrationID(id); err != nil {
		azWriteError(w, err)
		return
	}
	rec, ok := s.State.registration(id)
	if !ok {
		azWriteError(w, registrationNotFound(id))
		return
	}
	azWriteJSON(w, http.StatusOK, registrationWire(rec))
}

func (s *DPSServer) deleteRegistration(w http.ResponseWriter, r *http.Request) {
	if err := s.State.removeRegistration(r.PathValue("id"), r.Header.Get("If-Match")); err != nil {
		azWriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// query serves POST /enrollments/query for the query "*" only, paged by
// x-ms-max-item-count with the offset as continuation token.
func (s *DPSServer) query(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Query string `json:"query"`
	}
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil || q.Query == "" {
		azWriteError(w, azErr("dps", http.StatusBadRequest, 400004, nil, "the body must be a query specification"))
		return
	}
	if q.Query != "*" && q.Query != "SELECT * FROM enrollments" {
		azWriteError(w, azErr("dps", http.StatusBadRequest, 400004, nil, "only the query * is simulated"))
		return
	}
	limit, _ := strconv.Atoi(r.Header.Get("x-ms-max-item-count"))
	from, _ := strconv.Atoi(r.Header.Get("x-ms-continuation"))
	page, next := s.State.page(from, limit)
	if next > 0 {
		w.Header().Set("x-ms-continuation", strconv.Itoa(next))
	}
	w.Header().Set("x-ms-item-type", "Enrollment")
	w.Header().Set("x-ms-max-item-count", strconv.Itoa(len(page)))
	azWriteJSON(w, http.StatusOK, page)
}

// decodeEnrollmentPut reads a PUT body. DPS generates keys left out of a
// symmetric-key attestation, and so does the simulator.
func decodeEnrollmentPut(w http.ResponseWriter, r *http.Request) (e gatehouse.Enrollment, disabled bool, err error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return e, false, azErr("dps", http.StatusUnsupportedMediaType, 415001, nil, "the body must be application/json")
	}
	var body enrollmentWire
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 96<<10)).Decode(&body); err != nil {
		return e, false, azErr("dps", http.StatusBadRequest, 400004, nil, "the body is not a valid enrollment: %v", err)
	}
	return body.enrollment(r.PathValue("id"))
}

// azWriteError answers in DPS's ProvisioningServiceErrorDetails shape; the
// IoT Hub server has its own envelope.
func azWriteError(w http.ResponseWriter, err error) {
	ae := asAzureError(err)
	if ae.service == "iothub" {
		hubWriteError(w, ae)
		return
	}
	w.Header().Set("x-ms-error-code", strconv.Itoa(ae.code))
	azWriteJSON(w, ae.status, map[string]any{
		"errorCode":    ae.code,
		"trackingId":   trackingID(),
		"message":      ae.text(),
		"timestampUtc": time.Now().UTC().Format(time.RFC3339Nano),
	})
}

func trackingID() string {
	return fmt.Sprintf("%s-TimeStamp:%s", newETag()[1:17], time.Now().UTC().Format("01/02/2006 15:04:05"))
}

func azWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
