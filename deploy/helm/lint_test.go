package helm_test

import (
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestLint runs `helm lint`'s checks with each value file, against the
// oldest Kubernetes the chart claims, and allows no warning either.
func TestLint(t *testing.T) {
	kube := &chartutil.KubeVersion{Version: "v1.25.0", Major: "1", Minor: "25"}
	for _, file := range []string{"", "values-sqlite.yaml", "values-postgres-ha.yaml"} {
		l := lint.AllWithKubeVersion(chartDir, valuesFile(t, file), "gatehouse", kube)
		for _, m := range l.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("lint with %q: %s", file, m)
			} else {
				t.Logf("lint with %q: %s", file, m)
			}
		}
	}
}
