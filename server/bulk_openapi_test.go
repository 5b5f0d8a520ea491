package server

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"gatehouse"
	"gatehouse/provision"
)

// TestOpenAPIBulkSchemas: what the bulk routes take and send is what
// openapi.json says.
func TestOpenAPIBulkSchemas(t *testing.T) {
	schemas := loadOpenAPI(t).Components.Schemas
	now := time.Now()
	item := gatehouse.BulkItem{Seq: 1, DeviceID: "x57caa5lsobd", MAC: "02:00:00:00:00:01", Name: "site-a-001",
		Labels: map[string]string{"group": "edge"}, State: gatehouse.BulkFailed, Result: "name taken", DeviceState: gatehouse.StatePending}
	start := 1
	for _, tt := range []struct {
		schema string
		value  any
	}{
		{"BulkRequest", gatehouse.BulkRequest{Action: "approve", IDs: []string{"x57caa5lsobd"}, Pattern: "site-a-{n:03}", Start: &start, DryRun: true}},
		{"BulkRequest", gatehouse.BulkRequest{Action: "approve", Items: []gatehouse.BulkTarget{{MAC: "02:00:00:00:00:01", Name: "gw-1", Labels: map[string]string{"group": "a"}}}}},
		{"BulkOperation", gatehouse.BulkOperation{ID: "b", Action: "approve", Actor: "user:alice", Total: 1, Failed: 1,
			CreatedAt: now, FinishedAt: &now, Items: []gatehouse.BulkItem{item}}},
		{"BulkPlan", provision.BulkPlan{Action: "approve", Items: []gatehouse.BulkItem{item}, Problems: []provision.BulkProblem{{Item: 1, Error: "bad"}}}},
	} {
		t.Run(tt.schema, func(t *testing.T) {
			data, err := json.Marshal(tt.value)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(data, &v); err != nil {
				t.Fatal(err)
			}
			if err := schemas[tt.schema].Value.VisitJSON(v, openapi3.MultiErrors()); err != nil {
				t.Errorf("%s does not match the schema: %v\n%s", tt.schema, err, data)
			}
			checkDeclared(t, tt.schema, schemas[tt.schema].Value, v)
		})
	}
}
