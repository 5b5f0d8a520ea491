package vault

import (
	"strings"
	"testing"
	"time"

	"gatehouse/rest"
	"gatehouse/simulate"
)

// checkWith runs Check against a simulator with the given role and policy
// for AppRole tokens (nil: the one gatehouse needs).
func checkWith(t *testing.T, role *simulate.VaultRole, policy simulate.VaultPolicy, cfg Config) ([]string, error) {
	t.Helper()
	opts := simOptions(newClock())
	if role != nil {
		opts.RoleConfig = role
	}
	opts.TokenPolicy = policy
	s := newSim(t, opts)
	if cfg.Token == "" && cfg.AppRoleID == "" {
		cfg.AppRoleID, cfg.AppRoleSecretID = "role-id-1", "secret-id-s3cret"
	}
	return newClient(t, s.URL, cfg, nil).Check(t.Context())
}

func role(change func(*simulate.VaultRole)) *simulate.VaultRole {
	r := simulate.RecommendedVaultRole()
	change(&r)
	return &r
}

func wantMentions(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("err %v\ndoes not mention %q", err, p)
		}
	}
}

func TestCheckRecommendedRole(t *testing.T) {
	for _, sign := range []bool{false, true} {
		notes, err := checkWith(t, nil, nil, Config{Sign: sign, TTL: "720h"})
		if err != nil {
			t.Errorf("sign=%v: %v", sign, err)
		}
		if len(notes) != 1 || !strings.Contains(notes[0], "LIST pki/certs/detailed is allowed") {
			t.Errorf("sign=%v: notes %q", sign, notes)
		}
	}
}

// A role as OpenBao creates it by default (path_roles.go) fails both modes.
func TestCheckDefaultRole(t *testing.T) {
	def := simulate.DefaultVaultRole()
	_, err := checkWith(t, &def, nil, Config{Sign: true})
	wantMentions(t, err, "role gatehouse on mount pki", "key_type=rsa", "role requires keys of type rsa",
		"use_csr_common_name=false", "use_csr_sans=false", `"gw-01" is not allowed`, "allow_any_name=true")
	_, err = checkWith(t, &def, nil, Config{})
	wantMentions(t, err, `"gw-01" is not allowed`)
	if strings.Contains(err.Error(), "key_type") || strings.Contains(err.Error(), "use_csr") {
		t.Errorf("issue mode does not care about the CSR settings: %v", err)
	}
}

func TestCheckKeyTypes(t *testing.T) {
	anyKey := role(func(r *simulate.VaultRole) { r.KeyType = "any" })
	_, err := checkWith(t, anyKey, nil, Config{})
	wantMentions(t, err, "key_type=any cannot issue", "set key_type=ec key_bits=256")
	if _, err := checkWith(t, anyKey, nil, Config{Sign: true}); err != nil {
		t.Errorf("key_type=any in sign mode: %v", err)
	}
	_, err = checkWith(t, role(func(r *simulate.VaultRole) { r.KeyBits = 384 }), nil, Config{Sign: true})
	wantMentions(t, err, "key_bits=384", "set key_bits=256")
	if _, err := checkWith(t, role(func(r *simulate.VaultRole) { r.KeyType, r.KeyBits = "rsa", 0 }), nil, Config{}); err != nil {
		t.Errorf("rsa role in issue mode: %v", err)
	}
}

func TestCheckNamesAndStorage(t *testing.T) {
	glob := role(func(r *simulate.VaultRole) {
		r.AllowAnyName, r.AllowedDomains, r.AllowGlobDomains = false, []string{"gw-*"}, true
	})
	if _, err := checkWith(t, glob, nil, Config{}); err != nil {
		t.Errorf("allowed_domains=gw-* with globs: %v", err)
	}
	sub := role(func(r *simulate.VaultRole) {
		r.AllowAnyName, r.AllowedDomains, r.AllowSubdomains = false, []string{"example.com"}, true
	})
	_, err := checkWith(t, sub, nil, Config{})
	wantMentions(t, err, `"gw-01" is not allowed`)
	_, err = checkWith(t, role(func(r *simulate.VaultRole) { r.NoStore = true }), nil, Config{})
	wantMentions(t, err, "no_store=true", "neither revoke them")
}

// OpenBao caps a ttl above max_ttl (cert_util.go getCertificateNotAfter);
// without max_ttl the mount's max lease TTL, 768h by default, caps it.
func TestCheckTTLNotes(t *testing.T) {
	notes, err := checkWith(t, role(func(r *simulate.VaultRole) { r.MaxTTL = 720 * time.Hour }), nil, Config{TTL: "8760h"})
	if err != nil || !strings.Contains(strings.Join(notes, "\n"), "TTL 8760h exceeds role gatehouse's max_ttl 720h0m0s") {
		t.Errorf("notes %q, err %v", notes, err)
	}
	notes, _ = checkWith(t, role(func(r *simulate.VaultRole) { r.MaxTTL = 0 }), nil, Config{TTL: "8760h"})
	if !strings.Contains(strings.Join(notes, "\n"), "mount's max lease TTL (768h0m0s") {
		t.Errorf("notes %q", notes)
	}
}

// A token whose policy does not allow reading the role: a note, no error;
// with such a token a wrong role name looks the same (external-apis.md §0).
func TestCheckRoleNotReadable(t *testing.T) {
	policy := simulate.GatehouseVaultPolicy("pki", "gatehouse")
	delete(policy, "pki/roles/gatehouse")
	for _, r := range []string{"gatehouse", "no-such-role"} {
		notes, err := checkWith(t, nil, policy, Config{Role: r})
		if err != nil {
			t.Fatalf("role %s: %v", r, err)
		}
		if !strings.Contains(notes[0], "cannot read role "+r+" on mount pki (the policy does not allow read on pki/roles/"+r+")") ||
			!strings.Contains(notes[0], "a wrong mount or role name also shows as 403") {
			t.Errorf("notes %q", notes)
		}
	}
}

// Only a token that may read the path learns that role or mount are wrong.
func TestCheckRoleMissing(t *testing.T) {
	_, err := checkWith(t, nil, nil, Config{Token: rootToken, Role: "other"})
	wantMentions(t, err, `role "other" does not exist on mount "pki"`)
	if rest.StatusOf(err) != 404 {
		t.Errorf("status %d", rest.StatusOf(err))
	}
	_, err = checkWith(t, nil, nil, Config{Token: rootToken, Mount: "pki_nope"})
	wantMentions(t, err, `mount "pki_nope" does not exist`)
}

func TestCheckListingNotes(t *testing.T) {
	noDetailed := simulate.GatehouseVaultPolicy("pki", "gatehouse")
	delete(noDetailed, "pki/certs/detailed")
	notes, _ := checkWith(t, nil, noDetailed, Config{})
	if last := notes[len(notes)-1]; !strings.Contains(last, "does not allow list on pki/certs/detailed: retries list pki/certs") {
		t.Errorf("notes %q", notes)
	}
	delete(noDetailed, "pki/certs")
	notes, _ = checkWith(t, nil, noDetailed, Config{})
	if last := notes[len(notes)-1]; !strings.Contains(last, "allows list on neither pki/certs/detailed nor pki/certs") {
		t.Errorf("notes %q", notes)
	}

	opts := simOptions(newClock())
	opts.HashiCorp = true
	s := newSim(t, opts)
	notes, err := newClient(t, s.URL, Config{Token: rootToken}, nil).Check(t.Context())
	if err != nil || !strings.Contains(notes[len(notes)-1], "does not exist (HashiCorp Vault)") {
		t.Errorf("notes %q, err %v", notes, err)
	}
}
