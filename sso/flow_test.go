package sso

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func testSealer(t *testing.T, key string, c Config) *sealer {
	t.Helper()
	s, err := newSealer([]byte(key), c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealedFlow(t *testing.T) {
	key := strings.Repeat("k", 32)
	c := goodConfig()
	s := testSealer(t, key, c)
	now := time.Unix(1_800_000_000, 0)
	f := newFlow(now, "verifier-value")
	v := s.seal(f)
	for _, secret := range []string{f.State, f.Nonce, f.Verifier} {
		if strings.Contains(v, secret) {
			t.Fatal("the sealed flow shows its secrets")
		}
	}
	if got, err := s.open(v, now.Add(FlowTTL-time.Second)); err != nil || got != f {
		t.Fatalf("open: %+v, %v", got, err)
	}
	if _, err := s.open(v, now.Add(FlowTTL)); err == nil {
		t.Error("an expired flow opened")
	}
	tampered := []byte(v)
	tampered[5] ^= 0x04
	if _, err := s.open(string(tampered), now); err == nil {
		t.Error("a tampered flow opened")
	}
	for _, bad := range []string{"", "x", "!!!!", v[:10]} {
		if _, err := s.open(bad, now); err == nil {
			t.Errorf("%q opened", bad)
		}
	}
	other := c
	other.ClientID = "another-client"
	if _, err := testSealer(t, key, other).open(v, now); err == nil {
		t.Error("a flow of another client opened")
	}
	if _, err := testSealer(t, strings.Repeat("j", 32), c).open(v, now); err == nil {
		t.Error("a flow sealed with another key opened")
	}
	if _, err := newSealer([]byte("short"), c); err == nil {
		t.Error("a short key was accepted")
	}
}

func TestFlowsDiffer(t *testing.T) {
	now := time.Now()
	a, b := newFlow(now, "v"), newFlow(now, "v")
	if a.State == b.State || a.Nonce == b.Nonce || a.State == a.Nonce || len(a.State) < 40 {
		t.Fatalf("flows %+v %+v", a, b)
	}
}

func TestUsedStates(t *testing.T) {
	var u usedStates
	now := time.Unix(1_800_000_000, 0)
	f := newFlow(now, "v")
	if u.used(f.State) || !u.claim(f, now) {
		t.Fatal("a fresh state is not free")
	}
	if !u.used(f.State) || u.claim(f, now.Add(time.Minute)) {
		t.Fatal("a used state was free again")
	}
	g := newFlow(now.Add(FlowTTL), "v")
	if !u.claim(g, now.Add(FlowTTL)) {
		t.Fatal("another state was refused")
	}
	if u.used(f.State) || len(u.seen) != 1 {
		t.Fatalf("an expired state is kept: %d", len(u.seen))
	}
}

func TestFlowCookieIsSecureOverTLS(t *testing.T) {
	s := &OIDC{cookiePath: "/auth/sso/callback"}
	r := httptest.NewRequest("GET", "https://gatehouse.example.com/auth/sso/login", nil)
	r.TLS = &tls.ConnectionState{}
	if c := s.cookie(r, "v", 600); !c.Secure || !c.HttpOnly || c.Path != "/auth/sso/callback" {
		t.Fatalf("over TLS: %+v", c)
	}
	r = httptest.NewRequest("GET", "http://gatehouse.example.com/auth/sso/login", nil)
	if c := s.cookie(r, "v", 600); c.Secure {
		t.Fatalf("plain http: %+v", c)
	}
}

func TestExchangeErrorsHideTheSecret(t *testing.T) {
	c := goodConfig()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error":"invalid_client","error_description":"secret %s\nis wrong"}`, c.ClientSecret)
	}))
	defer echo.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	var logs bytes.Buffer
	for url, want := range map[string]string{
		echo.URL: "refused to finish the sign-in: invalid_client (secret [redacted] is wrong)",
		down.URL: "could not reach the identity provider",
	} {
		s := &OIDC{cfg: c, log: slog.New(slog.NewTextHandler(&logs, nil)),
			oauth: oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: url}}}
		_, err := s.exchange(context.Background(), "code", flow{Verifier: "v"})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", url, err, want)
		}
	}
	if strings.Contains(logs.String(), c.ClientSecret) || !strings.Contains(logs.String(), "invalid_client") {
		t.Fatalf("logs: %s", logs.String())
	}
}
