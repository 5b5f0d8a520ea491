package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/provision"
	"gatehouse/roster"
)

func (tb *testBundle) postCSV(t *testing.T, token, query, csv string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("POST", tb.url+"/api/v1/allowlist"+query, strings.NewReader(csv))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "text/csv; charset=utf-8")
	return do(t, req, out)
}

// postChecked imports csv as admin and wants the status. The body's
// shape is checked against openapi.json by TestOpenAPISchemasMatchTypes.
func (tb *testBundle) postChecked(t *testing.T, query, csv string, status int) map[string]any {
	t.Helper()
	var body map[string]any
	if code := tb.postCSV(t, tb.admin, query, csv, &body); code != status {
		t.Fatalf("import%s = %d, want %d: %v", query, code, status, body)
	}
	return body
}

type importAnswer struct {
	DryRun    bool                       `json:"dry_run"`
	Rows      int                        `json:"rows"`
	Imported  []gatehouse.AllowlistEntry `json:"imported"`
	Unchanged int                        `json:"unchanged"`
	Errors    []roster.RowError          `json:"errors"`
	Error     *struct{ Code, Message string }
}

// TestAllowlistImportRefusedWith422: a file with a bad row is answered 422
// with the error and each bad line, in the documented shape, and imports
// nothing; skip_invalid imports the rest.
func TestAllowlistImportRefusedWith422(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	csv := "mac,name,labels\n02:50:00:00:00:01,gw-a,site=a\n02:50:00:00:00:0g,gw-b\n02:50:00:00:00:03,gw-c\n"
	body := tb.postChecked(t, "", csv, http.StatusUnprocessableEntity)
	if imported, ok := body["imported"].([]any); !ok || len(imported) != 0 {
		t.Fatalf("imported = %v, want []", body["imported"])
	}
	errs := body["errors"].([]any)
	bad := errs[0].(map[string]any)
	if len(errs) != 1 || bad["line"] != float64(3) || !strings.Contains(bad["error"].(string), "invalid MAC") {
		t.Fatalf("errors = %v, want line 3's MAC", errs)
	}
	if e := body["error"].(map[string]any); e["code"] != "invalid" || !strings.Contains(e["message"].(string), "nothing was imported") {
		t.Fatalf("error = %v", e)
	}
	var page provision.AllowlistPage
	if code := tb.call(t, tb.view, "GET", "/api/v1/allowlist", nil, &page); code != 200 || page.Total != 0 {
		t.Fatalf("list after a refused import = %d %+v", code, page)
	}

	var res importAnswer
	raw, _ := json.Marshal(tb.postChecked(t, "?skip_invalid=true", csv, http.StatusOK))
	json.Unmarshal(raw, &res)
	if len(res.Imported) != 2 || len(res.Errors) != 1 || res.Errors[0].Line != 3 || res.Error != nil {
		t.Fatalf("skip_invalid = %+v", res)
	}
	if code := tb.call(t, tb.view, "GET", "/api/v1/allowlist", nil, &page); code != 200 || page.Total != 2 || page.Entries[0].Name != "gw-a" {
		t.Fatalf("list = %d %+v", code, page)
	}
	if code := tb.call(t, tb.admin, "DELETE", "/api/v1/allowlist/02:50:00:00:00:01", nil, nil); code != 204 {
		t.Fatalf("remove = %d", code)
	}
	var e apiError
	if code := tb.call(t, tb.admin, "DELETE", "/api/v1/allowlist/02:50:00:00:00:01", nil, &e); code != 404 || !strings.Contains(e.Error.Message, "not on the allowlist") {
		t.Fatalf("remove again = %d %+v", code, e)
	}
}

func TestAllowlistImportRefusesBadRequests(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	var e apiError
	if code := tb.call(t, tb.admin, "POST", "/api/v1/allowlist", map[string]string{"mac": "02:50:00:00:00:01"}, &e); code != 400 ||
		!strings.Contains(e.Error.Message, "text/csv") {
		t.Fatalf("JSON body = %d %+v", code, e)
	}
	if code := tb.postCSV(t, tb.admin, "?dry_run=maybe", "02:50:00:00:00:01,gw-a\n", &e); code != 400 || !strings.Contains(e.Error.Message, "dry_run") {
		t.Fatalf("bad dry_run = %d %+v", code, e)
	}
	big := strings.Repeat("# padding to pass the size bound\n", 40000)
	if code := tb.postCSV(t, tb.admin, "", big, &e); code != 413 {
		t.Fatalf("oversized file = %d %+v", code, e)
	}
	if code := tb.postCSV(t, tb.view, "", "02:50:00:00:00:01,gw-a\n", &e); code != 403 {
		t.Fatalf("viewer import = %d", code)
	}
	var res importAnswer
	if code := tb.postCSV(t, tb.admin, "?dry_run=true", "02:50:00:00:00:01,gw-a\n", &res); code != 200 || !res.DryRun || len(res.Imported) != 1 {
		t.Fatalf("dry run = %d %+v", code, res)
	}
	var page provision.AllowlistPage
	if tb.call(t, tb.view, "GET", "/api/v1/allowlist", nil, &page); page.Total != 0 {
		t.Fatalf("a dry run listed %+v", page)
	}
}
