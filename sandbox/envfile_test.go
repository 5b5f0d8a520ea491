package sandbox

import (
	"reflect"
	"testing"
	"time"

	"gatehouse/config"
)

// The env file must say exactly what Config says, secrets included, or a
// serve process started from it would provision somewhere else.
func TestEnvFileMatchesConfig(t *testing.T) {
	s, err := Start(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	path, err := s.WriteEnvFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, err := config.NewEnv(func(string) string { return "" }, path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.Load(e)
	if err != nil {
		t.Fatal(err)
	}
	want := s.Config()
	if *got.Mender != *want.Mender || !reflect.DeepEqual(got.Vault.Addr, want.Vault.Addr) ||
		got.Vault.Token != want.Vault.Token || got.Vault.Role != want.Vault.Role {
		t.Errorf("mender/vault: got %+v %+v, want %+v %+v", got.Mender, got.Vault, want.Mender, want.Vault)
	}
	if !reflect.DeepEqual(*got.DPS, *want.DPS) {
		t.Errorf("dps: got %+v, want %+v", got.DPS, want.DPS)
	}
	if !reflect.DeepEqual(got.Hubs.Hubs, want.Hubs.Hubs) || !reflect.DeepEqual(got.Hubs.Endpoints, want.Hubs.Endpoints) {
		t.Errorf("hubs: got %+v, want %+v", got.Hubs, want.Hubs)
	}
	if got.Manifests == nil {
		t.Error("no manifest loaded")
	}
	if _, err := got.Build(); err != nil {
		t.Errorf("build clients: %v", err)
	}
}
