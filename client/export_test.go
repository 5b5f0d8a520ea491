package client_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/client"
)

func TestExportDevices(t *testing.T) {
	const csv = "id,name\r\nd1,gw-01\r\n"
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if got, want := r.URL.RawQuery, "format=csv&q=gw&sort=name&state=pending"; got != want {
			t.Errorf("query = %q, want %q (filter and order, no page)", got, want)
		}
		if got := r.Header.Get("Accept"); got != "text/csv" {
			t.Errorf("Accept = %q, want text/csv", got)
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Write([]byte(csv))
	})
	var buf bytes.Buffer
	opts := client.ListOptions{State: gatehouse.StatePending, Search: "gw", Sort: "name", Limit: 5, Offset: 10}
	if err := c.ExportDevices(t.Context(), opts, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != csv {
		t.Errorf("export = %q, want %q", buf.String(), csv)
	}
}

func TestExportDevicesErrors(t *testing.T) {
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sort") == "bogus" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"code": "invalid", "message": "unknown sort"}})
			return
		}
		// Cut short, as the server does when reading fails midway.
		w.Header().Set("Content-Type", "text/csv")
		w.Write([]byte("id,name\r\nd1,gw"))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	err := c.ExportDevices(t.Context(), client.ListOptions{Sort: "bogus"}, &bytes.Buffer{})
	if gatehouse.ErrorCode(err) != gatehouse.EINVALID || !strings.Contains(err.Error(), "unknown sort") {
		t.Errorf("bad sort: err = %v, want the server's invalid error", err)
	}
	if err := c.ExportDevices(t.Context(), client.ListOptions{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("cut-short export: err = %v, want one saying so", err)
	}
}
