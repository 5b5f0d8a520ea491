package server

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"gatehouse"
	"gatehouse/audit"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/store"
)

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapiDoc)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

func TestOpenAPIValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", doc.OpenAPI)
	}
}

// protocolPaths are the protocol constants routes may be built from; a new
// one fails TestOpenAPICoversRoutes until it is added here.
var protocolPaths = map[string]string{
	"PathEnroll":   protocol.PathEnroll,
	"PathWait":     protocol.PathWait,
	"PathAck":      protocol.PathAck,
	"PathRenew":    protocol.PathRenew,
	"PathRenewAck": protocol.PathRenewAck,
}

// serverPaths are this package's path constants routes may be built from.
var serverPaths = map[string]string{
	"PathSSOLogin":    PathSSOLogin,
	"PathSSOCallback": PathSSOCallback,
}

// registeredRoutes reads every "METHOD /path" pattern passed to Handle or
// HandleFunc in this package's source, so a route added anywhere is seen.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if pattern, ok := handlePattern(t, fset, n); ok {
				routes = append(routes, pattern)
			}
			routes = append(routes, tablePatterns(t, fset, n)...)
			return true
		})
	}
	if len(routes) == 0 {
		t.Fatal("found no mux.Handle calls; has the routing moved?")
	}
	return routes
}

func handlePattern(t *testing.T, fset *token.FileSet, n ast.Node) (string, bool) {
	call, ok := n.(*ast.CallExpr)
	if !ok || len(call.Args) != 2 {
		return "", false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
		return "", false
	}
	if arg, ok := call.Args[0].(*ast.SelectorExpr); ok && arg.Sel.Name == "pattern" {
		return "", false // registering the route table, read above
	}
	return evalString(t, fset, call.Args[0]), true
}

// tablePatterns reads the route table: []route{{"METHOD /path", access, h}, ...}.
func tablePatterns(t *testing.T, fset *token.FileSet, n ast.Node) []string {
	lit, ok := n.(*ast.CompositeLit)
	if !ok {
		return nil
	}
	arr, ok := lit.Type.(*ast.ArrayType)
	if !ok {
		return nil
	}
	if id, ok := arr.Elt.(*ast.Ident); !ok || id.Name != "route" {
		return nil
	}
	var out []string
	for _, e := range lit.Elts {
		if r, ok := e.(*ast.CompositeLit); ok && len(r.Elts) == 3 {
			out = append(out, evalString(t, fset, r.Elts[0]))
		}
	}
	return out
}

// evalString evaluates the constant string expressions routes are written with.
func evalString(t *testing.T, fset *token.FileSet, e ast.Expr) string {
	switch e := e.(type) {
	case *ast.BasicLit:
		s, err := strconv.Unquote(e.Value)
		if err == nil {
			return s
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			return evalString(t, fset, e.X) + evalString(t, fset, e.Y)
		}
	case *ast.Ident:
		if v, ok := serverPaths[e.Name]; ok {
			return v
		}
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "protocol" {
			if v, ok := protocolPaths[e.Sel.Name]; ok {
				return v
			}
		}
	}
	t.Fatalf("%s: cannot evaluate route pattern; extend evalString or protocolPaths", fset.Position(e.Pos()))
	return ""
}

func TestOpenAPICoversRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	var routes []string
	for _, r := range registeredRoutes(t) {
		if r == "/" || r == "GET /{$}" || r == "GET /assets/" {
			continue // the catch-all that answers 404, and the web page
		}
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			t.Errorf("route %q has no method; every documented route needs one", r)
			continue
		}
		routes = append(routes, r)
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %s %s is not in openapi.json", method, path)
		}
	}
	// And the other way: the document promises nothing the server lacks.
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !slices.Contains(routes, method+" "+path) {
				t.Errorf("openapi.json documents %s %s, which routes.go does not register", method, path)
			}
		}
	}
}

func TestOpenAPISecurity(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.Components.SecuritySchemes["bearerAuth"] == nil {
		t.Fatal("no bearerAuth security scheme")
	}
	// The session endpoints are how a browser gets and shows its cookie, so
	// they say their own security.
	ownSecurity := []string{"POST /api/v1/session", "GET /api/v1/session", "DELETE /api/v1/session", "GET /api/v1/auth"}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			operator := strings.HasPrefix(path, "/api/v1/") && !slices.Contains(ownSecurity, method+" "+path)
			if got := op.Security == nil; got != operator {
				t.Errorf("%s %s: inherits bearerAuth = %v, want %v", method, path, got, operator)
			}
			if strings.HasPrefix(path, "/device/") {
				checkSignatureHeaders(t, method+" "+path, op)
			}
			if operator && op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Errorf("%s %s: no 401 response", method, path)
			}
		}
	}
}

func checkSignatureHeaders(t *testing.T, route string, op *openapi3.Operation) {
	t.Helper()
	for _, h := range []string{protocol.HeaderKey, protocol.HeaderTimestamp, protocol.HeaderNonce, protocol.HeaderSignature} {
		p := op.Parameters.GetByInAndName(openapi3.ParameterInHeader, h)
		if p == nil || !p.Required {
			t.Errorf("%s: header %s is not a required parameter", route, h)
		}
	}
}

// TestOpenAPIEnums keeps the document's enums equal to the domain's lists.
func TestOpenAPIEnums(t *testing.T) {
	schemas := loadOpenAPI(t).Components.Schemas
	var states, codes []string
	for _, s := range gatehouse.States {
		states = append(states, string(s))
	}
	for c := range statusOf {
		codes = append(codes, c)
	}
	tests := []struct {
		name string
		enum []any
		want []string
	}{
		{"State", schemas["State"].Value.Enum, states},
		{"Error.code", schemas["Error"].Value.Properties["error"].Value.Properties["code"].Value.Enum, codes},
		{"Step.name", schemas["Step"].Value.Properties["name"].Value.Enum,
			[]string{string(gatehouse.StepMender), string(gatehouse.StepDPS), string(gatehouse.StepVault), string(gatehouse.StepHub)}},
		{"Step.state", schemas["Step"].Value.Properties["state"].Value.Enum,
			[]string{string(gatehouse.StepPending), string(gatehouse.StepRunning), string(gatehouse.StepSucceeded), string(gatehouse.StepFailed)}},
	}
	for _, tt := range tests {
		var got []string
		for _, v := range tt.enum {
			got = append(got, v.(string))
		}
		sort.Strings(got)
		sort.Strings(tt.want)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s enum = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestOpenAPINamePattern checks the schema's name pattern against the one
// policy in gatehouse.ValidateName.
func TestOpenAPINamePattern(t *testing.T) {
	schema := loadOpenAPI(t).Components.Schemas["ApproveRequest"].Value
	for _, name := range []string{"gw-01", "a", "0", strings.Repeat("a", 63), strings.Repeat("a", 64), "-gw", "gw-", "GW", "gw_01", "gw.01", ""} {
		valid := gatehouse.ValidateName(name) == nil
		err := schema.VisitJSON(map[string]any{"name": name})
		if (err == nil) != valid {
			t.Errorf("name %q: schema accepts = %v, ValidateName accepts = %v (%v)", name, err == nil, valid, err)
		}
	}
}

// TestOpenAPISchemasMatchTypes validates what the server really encodes and
// decodes against the schemas, and requires every JSON field to be declared.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	schemas := loadOpenAPI(t).Components.Schemas
	device := sampleDevice()
	var errBody errorBody
	errBody.Error.Code, errBody.Error.Message = gatehouse.ECONFLICT, "name taken"
	var conflictBody errorBody
	conflictBody.Error.Code, conflictBody.Error.Message = gatehouse.ECONFLICT, `name "gw-01" is already taken`
	conflictBody.Error.Conflict = &gatehouse.Conflict{ID: "d1", Name: "gw-01", MAC: "02:00:00:00:00:01"}
	tests := []struct {
		schema string
		value  any
	}{
		{"Device", device},
		{"DeviceList", &provision.DeviceList{Devices: []*gatehouse.Device{device}, Total: 1}},
		{"DeviceList", &provision.DeviceList{Devices: []*gatehouse.Device{device}, Total: 1,
			Counts: map[gatehouse.State]int{gatehouse.StateProvisioning: 1, gatehouse.StatePending: 0}}},
		{"DeviceList", &provision.DeviceList{Devices: []*gatehouse.Device{}}},
		{"EventList", map[string]any{"events": []gatehouse.Event{{ID: 7, DeviceID: device.ID, At: time.Now(), Kind: "approved", Actor: "token:alice", Detail: "named gw-01"}}}},
		{"Error", errBody},
		{"Error", conflictBody},
		{"Session", sessionInfo{CSRFToken: "c", Kind: gatehouse.PrincipalUser, Name: "alice", Role: gatehouse.RoleAdmin, SimulatedBackends: true}},
		{"ApproveRequest", approveRequest{Name: "gw-01"}},
		{"EnrollRequest", protocol.EnrollRequest{MAC: "02:00:00:00:00:01", SealKey: make([]byte, 32), Hostname: "h", AgentVersion: "1"}},
		{"WaitRequest", protocol.WaitRequest{State: "pending"}},
		{"AckRequest", protocol.AckRequest{Name: "gw-01"}},
		{"Status", sampleStatus(device)},
		{"HealthStatus", map[string]string{"status": "ok"}},
		{"NotReady", sampleNotReady()},
		{"AuditPage", sampleAuditPage()},
		{"Device", sampleDecommissioned()},
		{"Decommission", sampleDecommissioned().Decommission},
		{"Decommission", &gatehouse.Decommission{DeviceID: "x", DryRun: true, Backends: []gatehouse.BackendRemoval{{Backend: "dps", LastError: "dps: 503", Removals: []gatehouse.Removal{}}}}},
		{"Forgotten", &gatehouse.Forgotten{DeviceID: "x", Name: "gw-01", MAC: "02:00:00:00:00:01", Fingerprint: strings.Repeat("ab", 32), State: gatehouse.StateDismissed, By: "token:alice", At: time.Now()}},
		{"AllowlistPage", sampleAllowlistPage()},
		{"ImportResult", sampleImport(false)},
		{"ImportRefused", sampleImport(true)},
		{"RenewRequest", protocol.RenewRequest{SealKey: make([]byte, 32), CSR: "PEM"}},
		{"Renewal", sampleRenewal()},
		{"RenewAckRequest", protocol.RenewAckRequest{Serial: "aa:bb"}},
		{"CertificateList", map[string]any{"certificates": []gatehouse.DeviceCert{sampleCert()}}},
		{"ExpiringCertificates", map[string]any{"expiring_within": "14d", "certificates": []provision.ExpiringCert{{DeviceCert: sampleCert(), Name: "gw-01", State: gatehouse.StateConfigured}}}},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			ref := schemas[tt.schema]
			if ref == nil {
				t.Fatalf("no schema %s", tt.schema)
			}
			data, err := json.Marshal(tt.value)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(data, &v); err != nil {
				t.Fatal(err)
			}
			if err := ref.Value.VisitJSON(v, openapi3.MultiErrors()); err != nil {
				t.Errorf("%s does not match the schema: %v\n%s", tt.schema, err, data)
			}
			checkDeclared(t, tt.schema, ref.Value, v)
		})
	}
}

// checkDeclared fails for a JSON field the schema does not name, which
// VisitJSON allows in open (response) schemas.
func checkDeclared(t *testing.T, at string, s *openapi3.Schema, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		if len(s.Properties) == 0 {
			return // a free-form map such as Step.output
		}
		for k, sub := range v {
			p := s.Properties[k]
			if p == nil {
				t.Errorf("%s.%s is sent but not in openapi.json", at, k)
				continue
			}
			checkDeclared(t, at+"."+k, p.Value, sub)
		}
	case []any:
		for _, item := range v {
			checkDeclared(t, at+"[]", s.Items.Value, item)
		}
	}
}

func sampleDevice() *gatehouse.Device {
	now := time.Now().UTC()
	return &gatehouse.Device{
		ID: "x57caa5lsobd", State: gatehouse.StateProvisioning, Name: "gw-01", MAC: "02:00:00:00:00:01",
		Fingerprint: strings.Repeat("ab", 32), KeyType: "rsa-3072", VerificationCode: "012345", SourceAddr: "192.0.2.1",
		Hostname: "edge-7", AgentVersion: "1.4.0",
		FirstSeen: now, LastSeen: now, ApprovedBy: "token:alice", ApprovedAt: &now, Reason: "dps: 429", UpdatedAt: now,
		SameMAC: []string{"x57caa5lsobe"}, SameCode: []string{"x57caa5lsobf"},
		Steps: []gatehouse.Step{{
			Name: gatehouse.StepDPS, State: gatehouse.StepFailed, Attempts: 2, LastError: "dps: 429",
			StartedAt: &now, FinishedAt: &now, Output: map[string]string{"dps_id_scope": "0ne00000000"},
			Sealed: map[string][]byte{protocol.FieldDPSPrimaryKey: []byte("never in JSON")},
		}},
	}
}

func sampleAuditPage() *provision.AuditPage {
	e := audit.Entry{Seq: 1, At: time.Now(), Actor: "token:alice", Source: "192.0.2.1", RequestID: "r1", Action: "device.approve",
		Target: "x57caa5lsobd", Result: "ok", Detail: `{"name":"gw-01"}`, PrevHash: audit.GenesisHash}
	e.Hash = audit.ComputeHash(e)
	return &provision.AuditPage{Entries: []audit.Entry{e}, NextBefore: 0, NextAfter: 1}
}

func sampleStatus(d *gatehouse.Device) *protocol.Status {
	return &protocol.Status{
		DeviceID: d.ID, State: string(gatehouse.StateProvisioned), Fingerprint: d.Fingerprint,
		VerificationCode: d.VerificationCode, Name: d.Name, Reason: "r", PollAfter: 30,
		Session: &protocol.SessionGrant{Token: "t", Key: []byte{7}, Expires: 1_800_000_000},
		Bundle: &protocol.Bundle{
			Name: d.Name, DPSIDScope: "0ne00000000", DPSRegistrationID: d.Name, Certificate: "PEM", CAChain: "PEM",
			Sealed: map[string][]byte{protocol.FieldDPSPrimaryKey: {1, 2, 3}, protocol.FieldPrivateKey: {4, 5, 6}},
		},
	}
}

func TestOpenAPIServed(t *testing.T) {
	rec := httptest.NewRecorder()
	s := &Server{}
	if err := s.handleOpenAPI(rec, httptest.NewRequest(http.MethodGet, "/api/openapi.json", nil)); err != nil {
		t.Fatal(err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !json.Valid(rec.Body.Bytes()) || rec.Body.Len() != len(openapiDoc) {
		t.Errorf("served %d bytes, want the %d-byte document", rec.Body.Len(), len(openapiDoc))
	}
}

func sampleNotReady() notReady {
	body := notReady{Status: "not ready", Reason: notReadySchema}
	body.Error.Code, body.Error.Message = gatehouse.EUNAVAILABLE, "behind"
	return body
}

// TestOpenAPIListSorts keeps the list's sort enum equal to the orders the
// store knows (bar the default, which is no sort parameter at all).
func TestOpenAPIListSorts(t *testing.T) {
	op := loadOpenAPI(t).Paths.Value("/api/v1/devices").Get
	p := op.Parameters.GetByInAndName(openapi3.ParameterInQuery, "sort")
	if p == nil {
		t.Fatal("GET /api/v1/devices has no sort parameter")
	}
	var got, want []string
	for _, v := range p.Schema.Value.Enum {
		got = append(got, v.(string))
	}
	for _, s := range store.DeviceSorts {
		if s != store.SortNewest {
			want = append(want, string(s))
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("sort enum = %q, want %q", got, want)
	}
	if op.Responses.Status(http.StatusOK).Value.Content.Get("text/csv") == nil {
		t.Error("GET /api/v1/devices does not document its text/csv answer")
	}
}
