package helm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"gatehouse/config"
)

func TestSQLiteValues(t *testing.T) {
	vals := valuesFile(t, "values-sqlite.yaml")
	o := mustRender(t, vals)
	checkCommon(t, o, vals)
	d := o.deployment.Spec
	if d.Replicas == nil || *d.Replicas != 1 || d.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %v strategy %s, want 1 and Recreate", d.Replicas, d.Strategy.Type)
	}
	if o.pvc == nil {
		t.Fatalf("no PersistentVolumeClaim for the SQLite file (kinds %v)", o.kinds)
	}
	if o.pvc.Spec.Resources.Requests.Storage().String() != "2Gi" || o.pvc.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Errorf("PVC %+v: want 2Gi, kept on uninstall", o.pvc.Spec.Resources)
	}
	spec := d.Template.Spec
	v, ok := volume(spec, "data")
	if !ok || v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != o.pvc.Name {
		t.Errorf("data volume %+v does not claim %s", v, o.pvc.Name)
	}
	for _, c := range []string{"migrate", "gatehouse"} {
		ctr := container(t, spec, c)
		if m, ok := mountAt(ctr, "/var/lib/gatehouse"); !ok || m.Name != "data" || m.ReadOnly {
			t.Errorf("%s: data volume not mounted writable at /var/lib/gatehouse", c)
		}
		if e, _ := envVar(ctr, "GATEHOUSE_DB"); e.Value != "/var/lib/gatehouse/gatehouse.db" || e.ValueFrom != nil {
			t.Errorf("%s: GATEHOUSE_DB %+v, want the file on the data volume", c, e)
		}
	}
	if o.pdb.Spec.MaxUnavailable == nil || o.pdb.Spec.MaxUnavailable.IntValue() != 1 || o.pdb.Spec.MinAvailable != nil {
		t.Errorf("PDB %+v: a single replica needs maxUnavailable 1, or no node could ever be drained", o.pdb.Spec)
	}
	if !strings.Contains(o.notes, "users create --db /var/lib/gatehouse/gatehouse.db") {
		t.Errorf("NOTES do not say how to make the first admin:\n%s", o.notes)
	}
}

func TestPostgresHAValues(t *testing.T) {
	vals := valuesFile(t, "values-postgres-ha.yaml")
	o := mustRender(t, vals)
	checkCommon(t, o, vals)
	d := o.deployment.Spec
	if d.Replicas == nil || *d.Replicas != 3 || d.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("replicas %v strategy %s, want 3 and RollingUpdate", d.Replicas, d.Strategy.Type)
	}
	if ru := d.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v: want maxUnavailable 0", ru)
	}
	if o.pvc != nil {
		t.Errorf("a PersistentVolumeClaim with PostgreSQL: %+v", o.pvc.Spec)
	}
	spec := d.Template.Spec
	if _, ok := volume(spec, "data"); ok {
		t.Errorf("a data volume with PostgreSQL")
	}
	for _, c := range []string{"migrate", "gatehouse"} {
		e, _ := envVar(container(t, spec, c), "GATEHOUSE_DB")
		ref := e.ValueFrom
		if e.Value != "" || ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "gatehouse-db" || ref.SecretKeyRef.Key != "url" {
			t.Errorf("%s: GATEHOUSE_DB %+v, want key url of Secret gatehouse-db", c, e)
		}
	}
	if o.pdb.Spec.MinAvailable == nil || o.pdb.Spec.MinAvailable.IntValue() != 2 || o.pdb.Spec.MaxUnavailable != nil {
		t.Errorf("PDB %+v: want minAvailable 2 alone", o.pdb.Spec)
	}
	if len(spec.TopologySpreadConstraints) != 2 {
		t.Errorf("topology spread %d constraints, want nodes and zones", len(spec.TopologySpreadConstraints))
	}
}

func TestServiceMonitor(t *testing.T) {
	vals := valuesFile(t, "values-postgres-ha.yaml")
	vals["metrics"] = map[string]any{"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prom"}}}
	o := mustRender(t, vals)
	sm := o.serviceMonitor
	if sm == nil {
		t.Fatalf("no ServiceMonitor when enabled (kinds %v)", o.kinds)
	}
	if sm["apiVersion"] != "monitoring.coreos.com/v1" {
		t.Errorf("apiVersion %v", sm["apiVersion"])
	}
	meta := sm["metadata"].(map[string]any)
	if meta["labels"].(map[string]any)["release"] != "prom" {
		t.Errorf("the extra label that a Prometheus selects by is missing: %v", meta["labels"])
	}
	spec := sm["spec"].(map[string]any)
	sel := map[string]string{}
	for k, v := range spec["selector"].(map[string]any)["matchLabels"].(map[string]any) {
		sel[k] = v.(string)
	}
	if len(sel) == 0 || !subset(sel, o.service.Labels) {
		t.Errorf("ServiceMonitor selects %v, the service is labelled %v", sel, o.service.Labels)
	}
	eps := spec["endpoints"].([]any)
	ep := eps[0].(map[string]any)
	if len(eps) != 1 || ep["port"] != "http" || ep["path"] != "/metrics" || ep["scheme"] != "http" {
		t.Errorf("endpoints %v: want port http, path /metrics", eps)
	}
}

// TestRefusals: values that would start a broken or unsafe server stop the
// install with a reason.
func TestRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		file  string
		edit  func(map[string]any)
		wants string
	}{
		"two servers on one SQLite file": {"values-sqlite.yaml", func(v map[string]any) { v["replicaCount"] = 2 }, "SQLite allows one server"},
		"rolling update on SQLite": {"values-sqlite.yaml", func(v map[string]any) {
			v["strategy"] = map[string]any{"type": "RollingUpdate"}
		}, "Recreate"},
		"credential in the config map": {"values-sqlite.yaml", func(v map[string]any) {
			v["config"].(map[string]any)["GATEHOUSE_VAULT_TOKEN"] = "hvs.x"
		}, "config.GATEHOUSE_VAULT_TOKEN is a credential"},
		"credential file in the config map": {"values-sqlite.yaml", func(v map[string]any) {
			v["config"].(map[string]any)["GATEHOUSE_MENDER_PASSWORD_FILE"] = "/x"
		}, "is a credential"},
		"unknown credential": {"values-postgres-ha.yaml", func(v map[string]any) {
			v["credentials"].(map[string]any)["GATEHOUSE_MENDER_TOKN"] = map[string]any{"secretName": "s", "key": "k"}
		}, "reads no such secret"},
		"credential without key": {"values-postgres-ha.yaml", func(v map[string]any) {
			v["credentials"].(map[string]any)["GATEHOUSE_WEBHOOK_SECRET"] = map[string]any{"secretName": "s"}
		}, "needs secretName and key"},
		"ingress without host": {"values-postgres-ha.yaml", func(v map[string]any) {
			v["ingress"].(map[string]any)["host"] = ""
		}, "ingress.host is required"},
	} {
		t.Run(name, func(t *testing.T) {
			vals := valuesFile(t, tc.file)
			tc.edit(vals)
			_, err := render(t, vals)
			if err == nil || !strings.Contains(err.Error(), tc.wants) {
				t.Errorf("render error %v, want one saying %q", err, tc.wants)
			}
		})
	}
}

// sampleSecrets are well-formed stand-ins for the keys of Secret
// gatehouse-backends, so config.Load can check what the chart hands over.
var sampleSecrets = map[string]string{
	"mender-token":              "mender-personal-access-token",
	"dps-connection-string":     "HostName=gh-dps.azure-devices-provisioning.net;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=c2FtcGxlIGtleSBmb3IgdGhlIGNoYXJ0IHRlc3Q=",
	"iothub-connection-strings": "HostName=gh-hub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=c2FtcGxlIGtleSBmb3IgdGhlIGNoYXJ0IHRlc3Q=\n",
	"vault-token":               "hvs.sample-token-for-the-chart-test",
}

// TestConfigLoads feeds the server's configuration loader exactly what the
// pod would see: the rendered environment, the config map as the --config
// file, and the projected credential files. Every backend the value file
// configures must come up, which ties the chart's names to config's.
func TestConfigLoads(t *testing.T) {
	for _, file := range []string{"values-sqlite.yaml", "values-postgres-ha.yaml"} {
		t.Run(file, func(t *testing.T) {
			o := mustRender(t, valuesFile(t, file))
			spec := o.deployment.Spec.Template.Spec
			ctr := container(t, spec, "gatehouse")
			root := t.TempDir()
			env := podEnv(t, ctr, root)
			writeConfigMap(t, o, ctr, root)
			writeCredentials(t, spec, ctr, root)
			e, err := config.NewEnv(func(k string) string { return env[k] }, env["GATEHOUSE_CONFIG"])
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(e)
			if err != nil {
				t.Fatalf("config.Load with the pod's settings: %v", err)
			}
			if cfg.Mender == nil || cfg.DPS == nil || cfg.Hubs == nil || cfg.Vault == nil {
				t.Errorf("backends on: mender %v, dps %v, iothub %v, vault %v; want all four", cfg.Mender != nil, cfg.DPS != nil, cfg.Hubs != nil, cfg.Vault != nil)
			}
			if cfg.Mender != nil && cfg.Mender.Token != sampleSecrets["mender-token"] {
				t.Errorf("the Mender token did not come from its file")
			}
		})
	}
}

// podEnv is the container's plain environment with its paths moved under
// root, where the test lays the mounted files.
func podEnv(t *testing.T, c corev1.Container, root string) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			continue // the PostgreSQL DSN; config does not read it
		}
		v := e.Value
		if strings.HasPrefix(v, "/etc/gatehouse/") {
			v = filepath.Join(root, v)
		}
		env[e.Name] = v
	}
	return env
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeConfigMap(t *testing.T, o objects, c corev1.Container, root string) {
	m, ok := mountAt(c, "/etc/gatehouse/config")
	if !ok || o.configMap == nil {
		t.Fatal("no config map mounted at /etc/gatehouse/config")
	}
	for k, v := range o.configMap.Data {
		writeFile(t, filepath.Join(root, m.MountPath, k), v)
	}
}

func writeCredentials(t *testing.T, spec corev1.PodSpec, c corev1.Container, root string) {
	v, _ := volume(spec, "credentials")
	m, _ := mountAt(c, "/etc/gatehouse/credentials")
	for _, src := range v.Projected.Sources {
		for _, it := range src.Secret.Items {
			val, ok := sampleSecrets[it.Key]
			if !ok {
				t.Fatalf("the value file names key %q of %s, which docs/deploy.md does not create", it.Key, src.Secret.Name)
			}
			writeFile(t, filepath.Join(root, m.MountPath, it.Path), val)
		}
	}
}

// TestManifestVolume mounts manifest templates the way docs/deploy.md says,
// in both containers.
func TestManifestVolume(t *testing.T) {
	vals := valuesFile(t, "values-postgres-ha.yaml")
	vals["extraVolumes"] = []any{map[string]any{"name": "manifests", "configMap": map[string]any{"name": "gatehouse-manifests"}}}
	vals["extraVolumeMounts"] = []any{map[string]any{"name": "manifests", "mountPath": "/etc/gatehouse/manifests", "readOnly": true}}
	spec := mustRender(t, vals).deployment.Spec.Template.Spec
	if v, ok := volume(spec, "manifests"); !ok || v.ConfigMap == nil || v.ConfigMap.Name != "gatehouse-manifests" {
		t.Errorf("manifests volume %+v", v)
	}
	for _, c := range []string{"migrate", "gatehouse"} {
		if m, ok := mountAt(container(t, spec, c), "/etc/gatehouse/manifests"); !ok || m.Name != "manifests" {
			t.Errorf("%s: manifests not mounted", c)
		}
	}
}
