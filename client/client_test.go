package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/client"
)

const testToken = "gat_test-secret"

// newServer serves h and returns a client of it.
func newServer(t *testing.T, h http.HandlerFunc, opts ...client.Option) *client.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, testToken, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func TestNewRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://host", "http://", "http://h/?x=1", "http://user:pw@h", "http://h/#frag"} {
		if _, err := client.New(u, testToken); err == nil {
			t.Errorf("New(%q) = nil error, want one", u)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("New(%q) error leaks the password: %v", u, err)
		}
	}
	if _, err := client.New("https://gatehouse.example.com/prefix/", testToken); err != nil {
		t.Errorf("valid URL with prefix: %v", err)
	}
}

func TestNewRejectsBadTokens(t *testing.T) {
	for _, tok := range []string{"", "two words", "line\nbreak"} {
		_, err := client.New("http://127.0.0.1:8080", tok)
		if err == nil {
			t.Errorf("New with token %q = nil error, want one", tok)
			continue
		}
		if tok != "" && strings.Contains(err.Error(), tok) {
			t.Errorf("error echoes the token: %v", err)
		}
	}
}

func TestHeaders(t *testing.T) {
	var ids []string
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if got, want := r.Header.Get("Authorization"), "Bearer "+testToken; got != want {
			t.Errorf("Authorization = %q, want %q", got, want)
		}
		if got := r.Header.Get("User-Agent"); !strings.HasPrefix(got, "gatehouse-cli/") {
			t.Errorf("User-Agent = %q, want gatehouse-cli/<version>", got)
		}
		if got := r.Header.Get("Accept"); got != "application/json" {
			t.Errorf("Accept = %q", got)
		}
		ids = append(ids, r.Header.Get("X-Request-Id"))
		writeJSON(w, http.StatusOK, map[string]any{"devices": []any{}, "total": 0})
	})
	for range 2 {
		if _, err := c.ListDevices(t.Context(), client.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	if !hex32.MatchString(ids[0]) || !hex32.MatchString(ids[1]) || ids[0] == ids[1] {
		t.Errorf("X-Request-Id values %q: want two distinct random 32-hex ids", ids)
	}
}

func TestWithUserAgent(t *testing.T) {
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("User-Agent"); got != "gatehouse-cli/1.2.3" {
			t.Errorf("User-Agent = %q", got)
		}
		writeJSON(w, http.StatusOK, gatehouse.Device{ID: "abc"})
	}, client.WithUserAgent("gatehouse-cli/1.2.3"))
	if _, err := c.Device(t.Context(), "abc"); err != nil {
		t.Fatal(err)
	}
}

func TestListDevicesQuery(t *testing.T) {
	tests := []struct {
		name string
		opts client.ListOptions
		want string
	}{
		{"defaults", client.ListOptions{}, ""},
		{"all", client.ListOptions{State: gatehouse.StatePending, Search: "gw 01&x", Limit: 5, Offset: 10},
			"limit=5&offset=10&q=gw+01%26x&state=pending"},
		{"sorted, counted", client.ListOptions{Search: "557 546", Seen: "active", Sort: "-last_seen", Counts: true},
			"counts=true&q=557+546&seen=active&sort=-last_seen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/api/v1/devices" {
					t.Errorf("request %s %s", r.Method, r.URL.Path)
				}
				if r.URL.RawQuery != tt.want {
					t.Errorf("query = %q, want %q", r.URL.RawQuery, tt.want)
				}
				writeJSON(w, http.StatusOK, map[string]any{"devices": []any{map[string]any{"id": "d1", "state": "pending"}}, "total": 7})
			})
			list, err := c.ListDevices(t.Context(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if list.Total != 7 || len(list.Devices) != 1 || list.Devices[0].ID != "d1" || list.Devices[0].State != gatehouse.StatePending {
				t.Errorf("list = %+v", list)
			}
		})
	}
}

func TestPathEscaping(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.EscapedPath())
		writeJSON(w, http.StatusOK, gatehouse.Device{})
	}))
	defer srv.Close()
	c, err := client.New(srv.URL+"/prefix/", testToken)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a/b c", ".."} {
		if _, err := c.Device(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"/prefix/api/v1/devices/a%2Fb%20c", "/prefix/api/v1/devices/%2E%2E"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("paths = %q, want %q", got, want)
	}
}

func TestEmptyID(t *testing.T) {
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
	})
	if _, err := c.Approve(t.Context(), "", "gw-01", nil); gatehouse.ErrorCode(err) != gatehouse.EINVALID {
		t.Errorf("Approve with empty id: err = %v, want %s", err, gatehouse.EINVALID)
	}
}

func TestApprove(t *testing.T) {
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/devices/d1/approve" {
			t.Errorf("request %s %s", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		body, _ := io.ReadAll(r.Body)
		if string(body) != `{"name":"gw-01"}` {
			t.Errorf("body = %s", body)
		}
		writeJSON(w, http.StatusOK, gatehouse.Device{ID: "d1", Name: "gw-01", State: gatehouse.StateApproved})
	})
	d, err := c.Approve(t.Context(), "d1", "gw-01", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "gw-01" || d.State != gatehouse.StateApproved {
		t.Errorf("device = %+v", d)
	}
}

func TestDismissAndEvents(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "POST /api/v1/devices/d1/dismiss":
			writeJSON(w, http.StatusOK, gatehouse.Device{ID: "d1", State: gatehouse.StateDismissed})
		case "GET /api/v1/devices/d1/events":
			writeJSON(w, http.StatusOK, map[string]any{"events": []gatehouse.Event{{ID: 1, DeviceID: "d1", At: at, Kind: "enrolled"}}})
		default:
			t.Errorf("unexpected %s %s", r.Method, r.URL.Path)
		}
	})
	d, err := c.Dismiss(t.Context(), "d1")
	if err != nil || d.State != gatehouse.StateDismissed {
		t.Fatalf("Dismiss = %+v, %v", d, err)
	}
	evs, err := c.Events(t.Context(), "d1")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != "enrolled" || !evs[0].At.Equal(at) {
		t.Errorf("events = %+v", evs)
	}
}

func TestErrorDecoding(t *testing.T) {
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusConflict, map[string]any{"error": map[string]string{
			"code": gatehouse.ECONFLICT, "message": `name "gw-01" is already taken in gatehouse by device d2`,
		}})
	})
	_, err := c.Approve(t.Context(), "d1", "gw-01", nil)
	var gerr *gatehouse.Error
	if !errors.As(err, &gerr) {
		t.Fatalf("err = %T %v, want *gatehouse.Error", err, err)
	}
	if gatehouse.ErrorCode(err) != gatehouse.ECONFLICT {
		t.Errorf("code = %q, want %q", gatehouse.ErrorCode(err), gatehouse.ECONFLICT)
	}
	if got, want := gatehouse.ErrorMessage(err), `name "gw-01" is already taken in gatehouse by device d2`; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestNonJSONError(t *testing.T) {
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html>\n<body>502 Bad Gateway</body>\n</html>")
	})
	_, err := c.Device(t.Context(), "d1")
	var serr *client.StatusError
	if !errors.As(err, &serr) || serr.Status != http.StatusBadGateway {
		t.Fatalf("err = %T %v, want *client.StatusError with 502", err, err)
	}
	msg := err.Error()
	for _, want := range []string{"502", "Bad Gateway", "<html> <body>"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q spans lines", msg)
	}
}

func TestNonJSONSuccess(t *testing.T) {
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>some other web site</html>")
	})
	_, err := c.Device(t.Context(), "d1")
	if err == nil || !strings.Contains(err.Error(), "is it a gatehouse server?") {
		t.Errorf("err = %v, want a hint about the server", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	c, err := client.New(url, testToken)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListDevices(t.Context(), client.ListOptions{})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"cannot reach gatehouse server at " + url, "--server"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, client.WithTimeout(50*time.Millisecond))
	defer close(release)
	_, err := c.Device(t.Context(), "d1")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "within 50ms") {
		t.Errorf("err = %v, want a timeout after 50ms", err)
	}
}

func TestWithHTTPClient(t *testing.T) {
	var used bool
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used = true
		return http.DefaultTransport.RoundTrip(r)
	})}
	c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, gatehouse.Device{ID: "d1"})
	}, client.WithHTTPClient(hc))
	if _, err := c.Device(t.Context(), "d1"); err != nil || !used {
		t.Errorf("err = %v, custom client used = %v", err, used)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
