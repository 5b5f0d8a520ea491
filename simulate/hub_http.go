package simulate

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"gatehouse/azure"
)

// HubServerOptions configures NewHubServer.
type HubServerOptions struct {
	// Wrap, if set, goes in front of the API.
	Wrap func(http.Handler) http.Handler
	// State is the hubs to serve, e.g. the Hub a DPS simulator assigns
	// devices to; default NewHub(Hubs...).
	State *Hub
	// Hubs are the hub host names when State is nil (default DefaultHubHost).
	Hubs []string
}

// HubServer serves simulated IoT Hubs over the service API's HTTP paths on
// one loopback port. The SAS token's resource (sr) says which hub a request
// is for, as the host name would in Azure. Server.Faults apply to its
// requests; State's in-process Faults do not.
type HubServer struct {
	*Server
	State *Hub
	// ConnectionStrings holds one iothubowner policy per hub, in
	// State.Hubs() order, each with its own random key.
	ConnectionStrings []azure.ConnectionString

	sas *sasPolicies
}

// NewHubServer starts an IoT Hub server. Close it when done.
func NewHubServer(opts HubServerOptions) (*HubServer, error) {
	if opts.State == nil {
		opts.State = NewHub(opts.Hubs...)
	}
	s := &HubServer{State: opts.State, sas: &sasPolicies{}}
	for _, host := range s.State.Hubs() {
		s.ConnectionStrings = append(s.ConnectionStrings, s.sas.newPolicy(host, "iothubowner"))
	}
	srv, err := serve(s.routes(), opts.Wrap)
	if err != nil {
		return nil, err
	}
	s.Server = srv
	return s, nil
}

// Config is a client configuration for this server: every hub's
// credentials, every hub host pointed at the server's URL.
func (s *HubServer) Config() azure.HubConfig {
	cfg := azure.HubConfig{Hubs: append([]azure.ConnectionString(nil), s.ConnectionStrings...), Endpoints: map[string]string{}}
	for _, cs := range s.ConnectionStrings {
		cfg.Endpoints[cs.HostName] = s.URL
	}
	return cfg
}

func (s *HubServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /devices/{id}", s.getDevice)
	mux.HandleFunc("DELETE /devices/{id}", s.deleteDevice)
	mux.HandleFunc("POST /devices/{id}/applyConfigurationContent", s.applyConfiguration)
	return azGuard("iothub", s.sas, mux)
}

// hubOf is the hub the request's token is scoped to.
func hubOf(r *http.Request) string {
	host, _ := r.Context().Value(azHostKey{}).(string)
	return host
}

func (s *HubServer) getDevice(w http.ResponseWriter, r *http.Request) {
	dev, err := s.State.device(hubOf(r), r.PathValue("id"))
	if err != nil {
		azWriteError(w, err)
		return
	}
	w.Header().Set("ETag", dev.etag)
	azWriteJSON(w, http.StatusOK, hubDeviceWire(dev))
}

// deleteDevice wants If-Match (the etag or *), as the SDKs always send it;
// answering 412 without one keeps a client from forgetting it.
func (s *HubServer) deleteDevice(w http.ResponseWriter, r *http.Request) {
	ifMatch := r.Header.Get("If-Match")
	if ifMatch == "" {
		azWriteError(w, azErr("iothub", http.StatusPreconditionFailed, 412002, nil, "If-Match is required; send * to delete unconditionally"))
		return
	}
	if err := s.State.remove(hubOf(r), r.PathValue("id"), ifMatch); err != nil {
		azWriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *HubServer) applyConfiguration(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 512<<10))
	if err != nil {
		azWriteError(w, azErr("iothub", http.StatusRequestEntityTooLarge, 413001, nil, "configuration content is too large"))
		return
	}
	if err := s.State.apply(hubOf(r), r.PathValue("id"), body); err != nil {
		azWriteError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// The Device JSON of GET /devices/{id} (learn.microsoft.com, get-identity).
type hubDeviceView struct {
	DeviceID                   string            `json:"deviceId"`
	GenerationID               string            `json:"generationId"`
	ETag                       string            `json:"etag"`
	ConnectionState            string            `json:"connectionState"`
	Status                     string            `json:"status"`
	StatusReason               *string           `json:"statusReason"`
	ConnectionStateUpdatedTime string            `json:"connectionStateUpdatedTime"`
	StatusUpdatedTime          string            `json:"statusUpdatedTime"`
	LastActivityTime           string            `json:"lastActivityTime"`
	CloudToDeviceMessageCount  int               `json:"cloudToDeviceMessageCount"`
	Authentication             hubAuthentication `json:"authentication"`
	Capabilities               capabilitiesWire  `json:"capabilities"`
	DeviceScope                string            `json:"deviceScope,omitempty"`
}

type hubAuthentication struct {
	SymmetricKey   symmetricKeyWire `json:"symmetricKey"`
	X509Thumbprint struct {
		PrimaryThumbprint   *string `json:"primaryThumbprint"`
		SecondaryThumbprint *string `json:"secondaryThumbprint"`
	} `json:"x509Thumbprint"`
	Type string `json:"type"`
}

func hubDeviceWire(d hubDevice) hubDeviceView {
	never := time.Time{}.Format(time.RFC3339)
	v := hubDeviceView{
		DeviceID: d.d.DeviceID, GenerationID: d.generationID, ETag: d.etag,
		ConnectionState: d.d.ConnectionState, Status: d.d.Status,
		ConnectionStateUpdatedTime: azTime(d.stateUpdated), StatusUpdatedTime: never, LastActivityTime: never,
		Authentication: hubAuthentication{Type: "sas",
			SymmetricKey: symmetricKeyWire{PrimaryKey: d.primaryKey, SecondaryKey: d.secondaryKey}},
		Capabilities: capabilitiesWire{IoTEdge: d.d.IoTEdge},
	}
	if d.d.IoTEdge {
		v.DeviceScope = "ms-azure-iot-edge://" + d.d.DeviceID + "-" + d.generationID
	}
	return v
}

// hubWriteError answers in IoT Hub's envelope: {"Message": "<the error
// details as a JSON string>", "ExceptionMessage": ""}, the shape reported in
// Azure/azure-iot-sdk-csharp#3442, plus the IotHub-ErrorCode header.
func hubWriteError(w http.ResponseWriter, ae *azureError) {
	inner, _ := json.Marshal(map[string]any{
		"errorCode":    ae.code,
		"trackingId":   trackingID(),
		"message":      ae.text(),
		"info":         map[string]string{},
		"timestampUtc": time.Now().UTC().Format(time.RFC3339Nano),
	})
	w.Header().Set("IotHub-ErrorCode", hubErrorName(ae.status))
	azWriteJSON(w, ae.status, map[string]string{"Message": string(inner), "ExceptionMessage": ""})
}

func hubErrorName(status int) string {
	names := map[int]string{
		http.StatusBadRequest:         "ArgumentInvalid",
		http.StatusUnauthorized:       "IotHubUnauthorizedAccess",
		http.StatusNotFound:           "DeviceNotFound",
		http.StatusConflict:           "DeviceAlreadyExists",
		http.StatusPreconditionFailed: "PreconditionFailed",
	}
	if n, ok := names[status]; ok {
		return n
	}
	return strings.ReplaceAll(http.StatusText(status), " ", "")
}
