package helm_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// container returns the pod's container or init container called name.
func container(t *testing.T, spec corev1.PodSpec, name string) corev1.Container {
	t.Helper()
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %q", name)
	return corev1.Container{}
}

func envVar(c corev1.Container, name string) (corev1.EnvVar, bool) {
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
	if i < 0 {
		return corev1.EnvVar{}, false
	}
	return c.Env[i], true
}

func mountAt(c corev1.Container, path string) (corev1.VolumeMount, bool) {
	i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == path })
	if i < 0 {
		return corev1.VolumeMount{}, false
	}
	return c.VolumeMounts[i], true
}

func volume(spec corev1.PodSpec, name string) (corev1.Volume, bool) {
	i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == name })
	if i < 0 {
		return corev1.Volume{}, false
	}
	return spec.Volumes[i], true
}

// checkSecurity holds every container to the image's contract: a non-root
// user, no privilege escalation, no capabilities, a read-only root.
func checkSecurity(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and runAsUser 65532", psc)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile is not RuntimeDefault")
	}
	if psc == nil || psc.FSGroup == nil || *psc.FSGroup != 65532 {
		t.Errorf("pod fsGroup is not 65532: the data volume would not be writable")
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("container %s has no securityContext", c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("container %s: root file system not read-only", c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("container %s: privilege escalation allowed", c.Name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("container %s: capabilities %+v, want drop ALL and add none", c.Name, sc.Capabilities)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("container %s: runAsNonRoot not set", c.Name)
		}
		if _, ok := mountAt(c, "/tmp"); !ok {
			t.Errorf("container %s has no writable /tmp for SQLite's temporary files", c.Name)
		}
	}
}

// checkProbes: liveness on /healthz, readiness on /readyz, on the named port.
func checkProbes(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe missing or not HTTP", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %s on port %s, want %s on http", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}
	if i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http" && p.ContainerPort == 8080 }); i < 0 {
		t.Errorf("container ports %+v: want http on 8080", c.Ports)
	}
}

// checkMigration: the init container migrates the same database the server
// opens, with the same image.
func checkMigration(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	m, s := container(t, spec, "migrate"), container(t, spec, "gatehouse")
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Name != "migrate" {
		t.Errorf("init containers %d, want the one migrate", len(spec.InitContainers))
	}
	if want := []string{"migrate", "--db", "$(GATEHOUSE_DB)"}; !slices.Equal(m.Args, want) {
		t.Errorf("migrate args %q, want %q", m.Args, want)
	}
	if m.Image != s.Image {
		t.Errorf("migrate image %s, server image %s", m.Image, s.Image)
	}
	me, _ := envVar(m, "GATEHOUSE_DB")
	se, ok := envVar(s, "GATEHOUSE_DB")
	if !ok || me.String() != se.String() {
		t.Errorf("GATEHOUSE_DB differs: migrate %v, server %v", me, se)
	}
	if i := slices.Index(s.Args, "--db"); s.Args[0] != "serve" || i < 0 || s.Args[i+1] != "$(GATEHOUSE_DB)" {
		t.Errorf("server args %q: want serve --db $(GATEHOUSE_DB)", s.Args)
	}
	// The server leaves the schema to the init container, so replicas of
	// a rolling update never migrate under each other.
	if !slices.Contains(s.Args, "--migrate=false") {
		t.Errorf("server args %q lack --migrate=false", s.Args)
	}
}

// checkCredentials: every credential is a file from its Secret key, and
// only its NAME_FILE reaches the environment, never the value.
func checkCredentials(t *testing.T, spec corev1.PodSpec, creds map[string]any) {
	t.Helper()
	if len(creds) == 0 {
		t.Fatal("the values under test configure no credentials")
	}
	v, ok := volume(spec, "credentials")
	if !ok || v.Projected == nil {
		t.Fatal("no projected credentials volume")
	}
	files := map[string][2]string{} // path in the volume -> secret, key
	for _, src := range v.Projected.Sources {
		if src.Secret == nil {
			t.Fatalf("credentials source %+v is not a Secret", src)
		}
		for _, it := range src.Secret.Items {
			files[it.Path] = [2]string{src.Secret.Name, it.Key}
		}
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		m, ok := mountAt(c, "/etc/gatehouse/credentials")
		if !ok || m.Name != "credentials" || !m.ReadOnly {
			t.Errorf("container %s: credentials not mounted read-only at /etc/gatehouse/credentials", c.Name)
		}
		for _, name := range slices.Sorted(maps.Keys(creds)) {
			want := creds[name].(map[string]any)
			e, ok := envVar(c, name+"_FILE")
			if !ok {
				t.Errorf("container %s: no %s_FILE", c.Name, name)
				continue
			}
			rel, found := strings.CutPrefix(e.Value, m.MountPath+"/")
			if got := files[rel]; !found || got != [2]string{want["secretName"].(string), want["key"].(string)} {
				t.Errorf("container %s: %s_FILE=%s is file %v, want key %v of Secret %v", c.Name, name, e.Value, got, want["key"], want["secretName"])
			}
			if _, ok := envVar(c, name); ok {
				t.Errorf("container %s: %s is in the environment as well as its file", c.Name, name)
			}
		}
	}
}

// checkCommon are the checks every value set must pass.
func checkCommon(t *testing.T, o objects, vals map[string]any) {
	t.Helper()
	if o.deployment == nil || o.service == nil || o.ingress == nil || o.pdb == nil {
		t.Fatalf("rendered kinds %v: want Deployment, Service, Ingress and PodDisruptionBudget", o.kinds)
	}
	spec := o.deployment.Spec.Template.Spec
	checkSecurity(t, spec)
	checkProbes(t, container(t, spec, "gatehouse"))
	checkMigration(t, spec)
	checkCredentials(t, spec, vals["credentials"].(map[string]any))
	if s := container(t, spec, "gatehouse"); s.Resources.Requests.Cpu().IsZero() || s.Resources.Limits.Memory().IsZero() {
		t.Errorf("server resources %+v: want a CPU request and a memory limit", s.Resources)
	}
	if s := container(t, spec, "gatehouse"); s.Image != "gatehouse:0.1.0" {
		t.Errorf("image %s, want the chart's appVersion as tag", s.Image)
	}
	pod := o.deployment.Spec.Template.Labels
	for what, sel := range map[string]map[string]string{
		"Deployment": o.deployment.Spec.Selector.MatchLabels, "Service": o.service.Spec.Selector, "PDB": o.pdb.Spec.Selector.MatchLabels,
	} {
		if len(sel) == 0 || !subset(sel, pod) {
			t.Errorf("%s selector %v does not select the pods %v", what, sel, pod)
		}
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("the service account token is mounted; the server calls no Kubernetes API")
	}
	checkIngress(t, o)
	if o.serviceMonitor != nil {
		t.Errorf("a ServiceMonitor by default; it needs the Prometheus Operator and is off unless asked for")
	}
}

func checkIngress(t *testing.T, o objects) {
	t.Helper()
	ing := o.ingress
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("ingressClassName %v, want nginx", ing.Spec.IngressClassName)
	}
	if got := ing.Annotations["cert-manager.io/cluster-issuer"]; got != "letsencrypt" {
		t.Errorf("cert-manager.io/cluster-issuer %q, want letsencrypt", got)
	}
	if len(ing.Spec.TLS) != 1 || !slices.Equal(ing.Spec.TLS[0].Hosts, []string{"gatehouse.example.com"}) || ing.Spec.TLS[0].SecretName != "gh-gatehouse-tls" {
		t.Errorf("ingress TLS %+v: want gatehouse.example.com in gh-gatehouse-tls", ing.Spec.TLS)
	}
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "gatehouse.example.com" || ing.Spec.Rules[0].HTTP == nil {
		t.Fatalf("ingress rules %+v", ing.Spec.Rules)
	}
	be := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
	if be == nil || be.Name != o.service.Name || be.Port.Name != o.service.Spec.Ports[0].Name {
		t.Errorf("ingress backend %+v does not name the service %s port %s", be, o.service.Name, o.service.Spec.Ports[0].Name)
	}
	if got := ing.Annotations["nginx.ingress.kubernetes.io/proxy-buffering"]; got != "off" {
		t.Errorf("proxy-buffering %q: server-sent events need it off", got)
	}
}

func subset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}
