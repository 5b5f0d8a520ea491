// Package helm_test renders the gatehouse chart with Helm's own Go packages,
// offline, and checks the objects a cluster would get. It lives in its own
// package so that only this test builds the Helm dependency.
package helm_test

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "gatehouse"

// objects are one rendering's Kubernetes objects, decoded strictly, so a
// misspelt or misplaced field fails the test instead of being dropped.
type objects struct {
	deployment      *appsv1.Deployment
	service         *corev1.Service
	configMap       *corev1.ConfigMap
	pvc             *corev1.PersistentVolumeClaim
	serviceAccount  *corev1.ServiceAccount
	ingress         *networkingv1.Ingress
	pdb             *policyv1.PodDisruptionBudget
	serviceMonitor  map[string]any
	notes           string
	kinds           []string
	renderedByFiles map[string]string
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// valuesFile reads one of the chart's value files; "" is the defaults alone.
func valuesFile(t *testing.T, name string) map[string]any {
	t.Helper()
	if name == "" {
		return map[string]any{}
	}
	v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// render renders the chart as `helm install gh` would with vals over the
// chart's defaults, and returns the error of a template's fail.
func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	c := loadChart(t)
	rv, err := chartutil.ToRenderValues(c, vals,
		chartutil.ReleaseOptions{Name: "gh", Namespace: "gatehouse", IsInstall: true, Revision: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return engine.Render(c, rv)
}

// mustRender renders vals and decodes every object.
func mustRender(t *testing.T, vals map[string]any) objects {
	t.Helper()
	files, err := render(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	o := objects{renderedByFiles: files}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, "NOTES.txt") {
			o.notes = files[name]
			continue
		}
		for _, doc := range strings.Split(files[name], "\n---") {
			if strings.TrimSpace(doc) != "" {
				o.decode(t, name, doc)
			}
		}
	}
	return o
}

func (o *objects) decode(t *testing.T, file, doc string) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
		t.Fatalf("%s: %v\n%s", file, err, doc)
	}
	if tm.Kind == "" {
		// A template that rendered only comments.
		var any map[string]any
		if err := yaml.Unmarshal([]byte(doc), &any); err != nil || len(any) != 0 {
			t.Fatalf("%s: an object without kind:\n%s", file, doc)
		}
		return
	}
	o.kinds = append(o.kinds, tm.Kind)
	var target any
	switch tm.Kind {
	case "Deployment":
		o.deployment = &appsv1.Deployment{}
		target = o.deployment
	case "Service":
		o.service = &corev1.Service{}
		target = o.service
	case "ConfigMap":
		o.configMap = &corev1.ConfigMap{}
		target = o.configMap
	case "PersistentVolumeClaim":
		o.pvc = &corev1.PersistentVolumeClaim{}
		target = o.pvc
	case "ServiceAccount":
		o.serviceAccount = &corev1.ServiceAccount{}
		target = o.serviceAccount
	case "Ingress":
		o.ingress = &networkingv1.Ingress{}
		target = o.ingress
	case "PodDisruptionBudget":
		o.pdb = &policyv1.PodDisruptionBudget{}
		target = o.pdb
	case "ServiceMonitor":
		o.serviceMonitor = map[string]any{}
		target = &o.serviceMonitor
	default:
		t.Fatalf("%s: unexpected kind %s", file, tm.Kind)
	}
	if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
		t.Fatalf("%s: %s does not decode strictly: %v\n%s", file, tm.Kind, err, doc)
	}
}
