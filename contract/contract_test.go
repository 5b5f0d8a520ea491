package contract_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"

	"gatehouse/contract"
)

func load(t *testing.T) *contract.Checker {
	t.Helper()
	docs, err := contract.LoadOpenAPI3(context.Background(), "mender/deviceauth/management_v2.yaml", "mender/inventory/management_v1.yaml")
	if errors.Is(err, contract.ErrNoSpecs) {
		t.Skip("skipping: ", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dps, err := contract.LoadSwagger2("azure-dps/service-2021-10-01.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := contract.NewChecker(append(docs, dps)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func request(method, path, body string) *http.Request {
	r, _ := http.NewRequest(method, "http://sim.test"+path, bytes.NewBufferString(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer x")
	return r
}

func TestCheckerAcceptsAndRejects(t *testing.T) {
	c := load(t)
	good := []*http.Request{
		request("POST", "/api/management/v2/devauth/devices",
			`{"identity_data":{"mac":"02:00:00:00:00:01"},"pubkey":"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"}`),
		request("PUT", "/enrollments/gw-01?api-version=2021-10-01",
			`{"registrationId":"gw-01","deviceId":"gw-01","attestation":{"type":"symmetricKey","symmetricKey":{"primaryKey":"a","secondaryKey":"b"}},"capabilities":{"iotEdge":true}}`),
	}
	for _, r := range good {
		if err := c.Check(r); err != nil {
			t.Errorf("valid request refused: %v", err)
		}
	}
	bad := []*http.Request{
		request("POST", "/api/management/v2/devauth/devices", `{"identity_data":{"mac":"x"}}`),
		request("PUT", "/enrollments/gw-01?api-version=2021-10-01", `{"registrationId":"gw-01"}`),
		request("GET", "/api/management/v9/nothing", ``),
	}
	for _, r := range bad {
		if err := c.Check(r); err == nil {
			t.Errorf("invalid request %s %s accepted", r.Method, r.URL.Path)
		}
	}
	if n, p := c.Result(); n != 5 || len(p) != 3 {
		t.Fatalf("result = %d checked, %d problems; want 5, 3", n, len(p))
	}
}
