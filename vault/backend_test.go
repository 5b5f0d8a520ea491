package vault

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"testing"

	"gatehouse"
	"gatehouse/protocol"
	"gatehouse/simulate"
)

// stepEnv is the Vault step against a simulated OpenBao with a given role,
// through the real client.
type stepEnv struct {
	sim  *simulate.VaultServer
	step *Backend
}

func newStepEnv(t *testing.T, role simulate.VaultRole, sign bool, opts ...func(*simulate.VaultServerOptions)) *stepEnv {
	t.Helper()
	o := simOptions(newClock())
	o.RoleConfig = &role
	for _, f := range opts {
		f(&o)
	}
	sim := newSim(t, o)
	c := newClient(t, sim.URL, Config{Token: rootToken, Sign: sign}, nil)
	return &stepEnv{sim: sim, step: NewBackend(c, sign, "gatehouse")}
}

// stepIn is a gateway approved as name whose agent sent a CSR (named
// gatehouse-pending, as the agent's is); Recorded keeps what the step records.
func stepIn(t *testing.T, name string) *gatehouse.StepInput {
	_, csr := newCSR(t)
	in := &gatehouse.StepInput{
		Device:   &gatehouse.Device{ID: "d1", Name: name},
		Key:      &gatehouse.DeviceKey{CSR: csr},
		Recorded: map[string]string{},
	}
	in.Record = func(_ context.Context, kv map[string]string) error {
		maps.Copy(in.Recorded, kv)
		maps.DeleteFunc(in.Recorded, func(_, v string) bool { return v == "" })
		return nil
	}
	return in
}

// A new OpenBao role's defaults (path_roles.go: key_type=rsa,
// use_csr_common_name=true, allow_any_name=false) each break the step; it
// must fail naming the setting to change and leave no valid certificate.
func TestStepNamesTheRoleSettingToChange(t *testing.T) {
	withCSRName := simulate.RecommendedVaultRole()
	withCSRName.UseCSRCommonName, withCSRName.UseCSRSANs = true, true
	anyKey := simulate.RecommendedVaultRole()
	anyKey.KeyType, anyKey.KeyBits = "any", 0
	cases := map[string]struct {
		role simulate.VaultRole
		sign bool
		want string
	}{
		"SignWithDefaultRole": {simulate.DefaultVaultRole(), true, "key_type=ec key_bits=256"},
		"SignTakesCSRName":    {withCSRName, true, "use_csr_common_name=false"},
		"IssueWithAnyKeyType": {anyKey, false, "key_type=ec key_bits=256"},
		"IssueNameNotAllowed": {func() simulate.VaultRole {
			r := simulate.DefaultVaultRole()
			r.KeyType, r.KeyBits = "ec", 256
			return r
		}(), false, "allow_any_name=true"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			env := newStepEnv(t, tc.role, tc.sign)
			_, err := env.step.Provision(context.Background(), stepIn(t, "gw-01"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "gatehouse") {
				t.Fatalf("err = %v, want it to name %q and the role", err, tc.want)
			}
			if live := env.sim.State.Live(); len(live) != 0 {
				t.Errorf("%d valid certificates left behind, want none", len(live))
			}
		})
	}
}

func TestStepSignsForTheApprovedName(t *testing.T) {
	env := newStepEnv(t, simulate.RecommendedVaultRole(), true)
	in := stepIn(t, "gw-02")
	res, err := env.step.Provision(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	cert := verifyCert(t, res.Output[gatehouse.OutCertificate], res.Output[gatehouse.OutCAChain], "gw-02")
	if cert.SerialNumber == nil || res.Output[gatehouse.OutSerial] == "" || len(res.Secrets) != 0 {
		t.Errorf("output %v, secrets %d; want a serial and no private key in sign mode", res.Output, len(res.Secrets))
	}
}

func TestStepIssuesAndSealsTheKey(t *testing.T) {
	env := newStepEnv(t, simulate.RecommendedVaultRole(), false)
	res, err := env.step.Provision(context.Background(), stepIn(t, "gw-03"))
	if err != nil {
		t.Fatal(err)
	}
	verifyCert(t, res.Output[gatehouse.OutCertificate], res.Output[gatehouse.OutCAChain], "gw-03")
	if len(res.Secrets[protocol.FieldPrivateKey]) == 0 {
		t.Error("issue mode returned no private key for the bundle")
	}
}

// A lost answer leaves a valid certificate gatehouse never recorded; the
// next attempt lists what was issued for the name and revokes it, on
// OpenBao (certs/detailed) and on HashiCorp Vault (certs, then each cert).
func TestStepRevokesWhatALostAttemptIssued(t *testing.T) {
	for _, hashicorp := range []bool{false, true} {
		env := newStepEnv(t, simulate.RecommendedVaultRole(), true, func(o *simulate.VaultServerOptions) { o.HashiCorp = hashicorp })
		in := stepIn(t, "gw-04")
		env.sim.Faults.LoseNext(1, func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/sign/") })
		if _, err := env.step.Provision(context.Background(), in); err == nil {
			t.Fatal("the lost answer did not reach the step")
		}
		if in.Recorded[recIssuing] == "" {
			t.Fatal("the attempt was not recorded before calling Vault")
		}
		res, err := env.step.Provision(context.Background(), in)
		if err != nil {
			t.Fatalf("hashicorp=%v: %v", hashicorp, err)
		}
		live := env.sim.State.Live()
		if len(live) != 1 || live[0].Serial != res.Output[gatehouse.OutSerial] || len(env.sim.State.Certificates()) != 2 {
			t.Errorf("hashicorp=%v: %d issued, %d valid; want the lost one revoked and the step's the only valid one",
				hashicorp, len(env.sim.State.Certificates()), len(live))
		}
	}
}

// A refusal issued nothing, so the next attempt need not list anything.
func TestStepRefusalClearsTheRecord(t *testing.T) {
	env := newStepEnv(t, simulate.DefaultVaultRole(), true)
	in := stepIn(t, "gw-05")
	if _, err := env.step.Provision(context.Background(), in); err == nil {
		t.Fatal("want the default role to refuse the CSR")
	}
	if in.Recorded[recIssuing] != "" {
		t.Errorf("recorded %v after a refusal; want nothing left to sweep", in.Recorded)
	}
}

// A call refused before it reached Vault (no connection, 503) issued
// nothing either: the next attempt lists nothing, and the reason the
// operator sees is the outage, not a lost answer.
func TestStepOutageClearsTheRecord(t *testing.T) {
	for _, mode := range []string{"refused", "503"} {
		t.Run(mode, func(t *testing.T) {
			env := newStepEnv(t, simulate.RecommendedVaultRole(), true)
			in := stepIn(t, "gw-06")
			if mode == "refused" {
				env.sim.Down()
			} else {
				env.sim.Faults.SetMix(simulate.Mix{Rate: 1, Weights: map[simulate.FaultKind]float64{simulate.Fault503: 1}})
			}
			for range 2 {
				_, err := env.step.Provision(context.Background(), in)
				if err == nil || strings.Contains(err.Error(), "lost") {
					t.Fatalf("err = %v, want the outage", err)
				}
				if in.Recorded[recIssuing] != "" {
					t.Fatalf("recorded %v after a call Vault never acted on", in.Recorded)
				}
			}
			env.sim.Up()
			env.sim.Faults.SetMix(simulate.Mix{})
			var listed int
			env.sim.Faults.SetRecorder(func(c simulate.Call) {
				if strings.Contains(c.Path, "/certs") {
					listed++
				}
			})
			if _, err := env.step.Provision(context.Background(), in); err != nil {
				t.Fatal(err)
			}
			if listed != 0 || len(env.sim.State.Live()) != 1 {
				t.Errorf("listed %d times, %d valid certificates; want no sweep and one", listed, len(env.sim.State.Live()))
			}
		})
	}
}

func TestStepDecommissionRevokes(t *testing.T) {
	env := newStepEnv(t, simulate.RecommendedVaultRole(), true)
	in := stepIn(t, "gw-06")
	res, err := env.step.Provision(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	in.Recorded = res.Output
	got, err := env.step.Decommission(context.Background(), in, false)
	if err != nil || len(got) != 1 || got[0].Result != "revoked" || len(env.sim.State.Live()) != 0 {
		t.Errorf("decommission = %+v, %v with %d valid certificates; want it revoked", got, err, len(env.sim.State.Live()))
	}
}
