package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse"
)

// TestAllowlistCommands imports a file through the real server into the
// HTTP simulators (whose clients pace themselves to the quotas): a bad MAC
// and a name DPS holds are printed as FILE:LINE: error and nothing is
// imported; --skip-invalid imports the rest; list and remove follow.
func TestAllowlistCommands(t *testing.T) {
	sims, a := startSimulated(t, 100*time.Millisecond, func(cfg *appConfig) { cfg.Logger = quiet })
	env := operatorEnv(t, a, "ops")
	sims.DPS.State.CreateEnrollment(context.Background(), gatehouse.Enrollment{RegistrationID: "site-a-003", DeviceID: "site-a-003",
		PrimaryKey: "MDEyMzQ1Njc4OWFiY2RlZg==", SecondaryKey: "MDEyMzQ1Njc4OWFiY2RlZg=="})

	file := filepath.Join(t.TempDir(), "site-a.csv")
	csv := "mac,name,labels\n02:60:00:00:00:01,site-a-001,site=a\n02:60:00:00:00:zz,site-a-002\n02:60:00:00:00:03,site-a-003\n02:60:00:00:00:04,site-a-004\n"
	if err := os.WriteFile(file, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := gh(t, env, "", "allowlist", "import", file)
	if code != 1 || !strings.Contains(errOut, file+":3: invalid MAC") || !strings.Contains(errOut, file+":4: name \"site-a-003\" is already taken in dps") ||
		!strings.Contains(errOut, "nothing was imported") {
		t.Fatalf("import = %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if code, out, _ := gh(t, env, "", "allowlist", "list"); code != 0 || !strings.Contains(out, "0 of 0 entries") {
		t.Fatalf("list after a refused import = %d %s", code, out)
	}

	code, out, errOut = gh(t, env, "", "allowlist", "import", "--dry-run", "--skip-invalid", file)
	if code != 0 || !strings.Contains(out, "would import 2 of 4 rows; 2 bad rows skipped") || !strings.Contains(errOut, file+":3:") {
		t.Fatalf("dry run = %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	code, out, errOut = gh(t, env, "", "allowlist", "import", file, "--skip-invalid")
	if code != 0 || !strings.Contains(out, "imported 2 of 4 rows; 2 bad rows skipped") || strings.Count(errOut, file+":") != 2 {
		t.Fatalf("skip-invalid = %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	code, out, _ = gh(t, env, "", "allowlist", "list")
	if code != 0 || !strings.Contains(out, "02:60:00:00:00:01  site-a-001  site=a") || !strings.Contains(out, "2 of 2 entries") {
		t.Fatalf("list = %d\n%s", code, out)
	}
	// The same file from stdin: the good rows are listed already.
	code, out, _ = gh(t, env, "02:60:00:00:00:01,site-a-001,site=a\n", "allowlist", "import", "-")
	if code != 0 || !strings.Contains(out, "imported 0 of 1 rows; 1 listed already") {
		t.Fatalf("import from stdin = %d %s", code, out)
	}
	if code, out, _ := gh(t, env, "", "allowlist", "remove", "02:60:00:00:00:04"); code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("remove = %d %s", code, out)
	}
	if code, _, errOut := gh(t, env, "", "allowlist", "remove", "02:60:00:00:00:04"); code != 1 || !strings.Contains(errOut, "not on the allowlist") {
		t.Fatalf("remove again = %d %s", code, errOut)
	}
	if code, _, errOut := gh(t, env, "", "allowlist", "import"); code != 2 || !strings.Contains(errOut, "CSV file") {
		t.Fatalf("import without a file = %d %s", code, errOut)
	}
	if code, _, errOut := gh(t, env, "", "allowlist", "import", filepath.Join(t.TempDir(), "nosuch.csv")); code != 2 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("import of a missing file = %d %s", code, errOut)
	}
}
