package vault

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse"
	"gatehouse/rest"
	"gatehouse/simulate"
)

// smallPages makes Issued page through a handful of certificates.
func smallPages(t *testing.T, n int) {
	old := listPage
	listPage = n
	t.Cleanup(func() { listPage = old })
}

// pathCounter counts a simulator's requests by path prefix.
type pathCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (p *pathCounter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		for _, prefix := range []string{"/v1/pki/certs/detailed", "/v1/pki/certs", "/v1/pki/cert/", "/v1/pki/roles/"} {
			if strings.HasPrefix(r.URL.Path, prefix) {
				p.n[prefix]++
				break
			}
		}
		p.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (p *pathCounter) get(prefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[prefix]
}

func issuedSetup(t *testing.T, change func(*simulate.VaultServerOptions)) (*simulate.VaultServer, *Client, *pathCounter) {
	t.Helper()
	opts := simOptions(newClock())
	pc := &pathCounter{n: map[string]int{}}
	opts.Wrap = pc.Wrap
	if change != nil {
		change(&opts)
	}
	s := newSim(t, opts)
	c := newClient(t, s.URL, Config{AppRoleID: "role-id-1", AppRoleSecretID: "secret-id-s3cret"}, nil)
	return s, c, pc
}

func serialsOf(certs []gatehouse.IssuedCert) []string {
	var out []string
	for _, c := range certs {
		out = append(out, c.Serial)
	}
	slices.Sort(out)
	return out
}

// Issued pages through LIST certs/detailed (path_fetch.go
// pathFetchCertListDetailed, "after" exclusive, "limit") and answers what
// the simulator's in-process Issued answers.
func TestIssuedPages(t *testing.T) {
	smallPages(t, 3)
	s, c, pc := issuedSetup(t, nil)
	ctx := t.Context()
	since := time.Now()
	var want []string
	for i := range 11 {
		name := "gw-a"
		if i%3 == 0 {
			name = "gw-b"
		}
		got, err := c.Issue(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "gw-a" {
			want = append(want, got.Serial)
		}
	}
	slices.Sort(want)
	got, err := c.Issued(ctx, "gw-a", since)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(serialsOf(got), want) {
		t.Errorf("Issued %v, want %v", serialsOf(got), want)
	}
	inproc, _ := s.State.Issued(ctx, "gw-a", since)
	if !slices.Equal(serialsOf(inproc), want) {
		t.Errorf("in-process Issued %v, want %v", serialsOf(inproc), want)
	}
	if n := pc.get("/v1/pki/certs/detailed"); n != 4 {
		t.Errorf("%d listing pages for 11 certificates, want 4", n)
	}
	for _, ic := range got {
		if ic.CommonName != "gw-a" || ic.NotBefore.IsZero() || !ic.NotAfter.After(ic.NotBefore) {
			t.Errorf("issued %+v", ic)
		}
	}
}

// Vault backdates NotBefore (30 s, or the role's not_before_duration):
// a certificate issued after since still counts; one issued well before
// does not.
func TestIssuedBackdating(t *testing.T) {
	role := simulate.RecommendedVaultRole()
	role.NotBeforeDuration = 10 * time.Minute
	_, c, _ := issuedSetup(t, func(o *simulate.VaultServerOptions) { o.RoleConfig = &role })
	ctx := t.Context()
	since := time.Now()
	got, err := c.Issue(ctx, "gw-01")
	if err != nil {
		t.Fatal(err)
	}
	found, err := c.Issued(ctx, "gw-01", since)
	if err != nil || len(found) != 1 || found[0].Serial != got.Serial {
		t.Errorf("Issued = %v, %v; want the certificate despite its NotBefore 10 minutes back", found, err)
	}
	if found, _ := c.Issued(ctx, "gw-01", time.Now().Add(2*time.Minute)); len(found) != 0 {
		t.Errorf("certificate issued before since found: %v", found)
	}
}

func TestIssuedEmpty(t *testing.T) {
	_, c, _ := issuedSetup(t, nil)
	got, err := c.Issued(t.Context(), "gw-01", time.Time{})
	if err != nil || len(got) != 0 {
		t.Errorf("Issued on an empty mount = %v, %v", got, err)
	}
}

// HashiCorp Vault has no certs/detailed: Issued lists certs and reads each.
func TestIssuedHashiCorpFallback(t *testing.T) {
	smallPages(t, 2)
	_, c, pc := issuedSetup(t, func(o *simulate.VaultServerOptions) { o.HashiCorp = true })
	ctx := t.Context()
	var want []string
	for i := range 5 {
		got, err := c.Issue(ctx, fmt.Sprintf("gw-%d", i%2))
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			want = append(want, got.Serial)
		}
	}
	slices.Sort(want)
	got, err := c.Issued(ctx, "gw-0", time.Now().Add(-time.Hour))
	if err != nil || !slices.Equal(serialsOf(got), want) {
		t.Errorf("Issued = %v, %v; want %v", serialsOf(got), err, want)
	}
	// One plain listing (Vault ignores limit and answers all five), and
	// every certificate read.
	if l, r := pc.get("/v1/pki/certs"), pc.get("/v1/pki/cert/"); l != 1 || r != 5 {
		t.Errorf("%d listings and %d reads, want 1 and 5", l, r)
	}
}

// A policy without list on certs/detailed falls back to certs; without
// either, the error names the paths to allow.
func TestIssuedPolicy(t *testing.T) {
	policy := simulate.GatehouseVaultPolicy("pki", "gatehouse")
	delete(policy, "pki/certs/detailed")
	_, c, pc := issuedSetup(t, func(o *simulate.VaultServerOptions) { o.TokenPolicy = policy })
	if _, err := c.Issue(t.Context(), "gw-01"); err != nil {
		t.Fatal(err)
	}
	got, err := c.Issued(t.Context(), "gw-01", time.Now().Add(-time.Hour))
	if err != nil || len(got) != 1 || pc.get("/v1/pki/cert/") != 1 {
		t.Errorf("Issued = %v, %v after %d reads", got, err, pc.get("/v1/pki/cert/"))
	}

	delete(policy, "pki/certs")
	_, c, _ = issuedSetup(t, func(o *simulate.VaultServerOptions) { o.TokenPolicy = policy })
	_, err = c.Issued(t.Context(), "gw-01", time.Now())
	wantMentions(t, err, `"list" on pki/certs/detailed (OpenBao) or pki/certs (HashiCorp Vault)`, `"read" on pki/cert/*`)
	if rest.StatusOf(err) != 403 {
		t.Errorf("status %d, want 403", rest.StatusOf(err))
	}
}

// The role is read once for its backdating, not per call.
func TestIssuedReadsRoleOnce(t *testing.T) {
	_, c, pc := issuedSetup(t, nil)
	for range 3 {
		if _, err := c.Issued(t.Context(), "gw-01", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if n := pc.get("/v1/pki/roles/"); n != 1 {
		t.Errorf("%d role reads, want 1", n)
	}
}

// OpenBao's ListPage compares "after" with the stored keys, "certs/0a-01":
// hyphens, although the listing shows "0a:01". Serials that share their
// first byte show what a colon "after" would lose.
func TestIssuedAfterIsHyphenated(t *testing.T) {
	smallPages(t, 2)
	stored := []string{"0a-01", "0a-02", "0a-03", "0a-04", "0b-01"}
	var afters []string
	var mu sync.Mutex
	_, url := newScript(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if strings.Contains(r.URL.Path, "/roles/") {
			writeJSON(w, 403, map[string]any{"errors": []string{"permission denied"}})
			return
		}
		after := r.URL.Query().Get("after")
		mu.Lock()
		afters = append(afters, after)
		mu.Unlock()
		var keys []string
		info := map[string]any{}
		for _, k := range stored {
			if k > after && len(keys) < 2 {
				colon := strings.ReplaceAll(k, "-", ":")
				keys = append(keys, colon)
				info[colon] = map[string]any{"common_name": "gw-01", "not_before": time.Now().Format(time.RFC3339), "not_after": time.Now().Add(time.Hour).Format(time.RFC3339)}
			}
		}
		if len(keys) == 0 {
			writeJSON(w, 404, map[string]any{"errors": []string{}})
			return
		}
		writeJSON(w, 200, map[string]any{"data": map[string]any{"keys": keys, "key_info": info}})
	})
	c := newClient(t, url, Config{Token: rootToken}, nil)
	got, err := c.Issued(t.Context(), "gw-01", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0a:01", "0a:02", "0a:03", "0a:04", "0b:01"}; !slices.Equal(serialsOf(got), want) {
		t.Errorf("Issued %v, want %v (afters sent: %q)", serialsOf(got), want, afters)
	}
}
