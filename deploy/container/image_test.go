package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildLimits and runLimits are words in buildah's and podman's errors
// that say the machine cannot build or run containers (no user namespaces,
// no mounts, cgroups or rlimits a sandbox forbids), as opposed to a wrong
// image: a binary that is missing or not executable says "not found" or
// "permission denied", which are in neither list.
var (
	buildLimits = []string{"operation not permitted", "user namespace", "newuidmap", "newgidmap",
		"kernel does not support", "driver not supported", "mount"}
	runLimits = []string{"operation not permitted", "user namespace", "newuidmap", "newgidmap",
		"cgroup", "rlimit", "not compatible with"}
)

// matches reports whether out holds one of words.
func matches(out string, words []string) bool {
	low := strings.ToLower(out)
	for _, w := range words {
		if strings.Contains(low, w) {
			return true
		}
	}
	return false
}

// engine runs buildah and podman on a store of their own in the test's
// temp dir, so the test neither sees nor leaves images in the machine's
// store. vfs needs no overlay mounts, which a temp dir cannot always have
// and which would outlive the test.
type engine struct {
	store []string
}

func newEngine(t *testing.T) engine {
	dir := t.TempDir()
	return engine{store: []string{
		"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs",
	}}
}

// run runs tool with the engine's store, each call with its own deadline.
func (e engine) run(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, append(append([]string{}, e.store...), args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// prebuiltContext is the build context of the runtime-prebuilt stage: a
// static gatehouse that prints version, and a CA bundle.
func prebuiltContext(t *testing.T, version string) string {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-X main.version="+version,
		"-o", filepath.Join(dir, "gatehouse"), "gatehouse/cmd/gatehouse")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The image needs the bundle only to reach backends over TLS, which
	// this test does not do; without one on the host an empty file stands in.
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca-certificates.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPrebuiltImage builds the runtime-prebuilt stage with buildah, pulling
// nothing, and runs the image with podman: read-only, without network, as
// its own user. Where the machine cannot build or run containers it skips,
// saying why; a wrong image fails.
func TestPrebuiltImage(t *testing.T) {
	for _, tool := range []string{"buildah", "podman"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH (apt-get install buildah podman)", tool)
		}
	}
	if testing.Short() {
		t.Skip("builds gatehouse and an image; skipped with -short")
	}
	version := "test-" + randomHex(t)
	dir := prebuiltContext(t, version)
	e := newEngine(t)
	image := "localhost/gatehouse-test:" + version
	if out, err := e.run(t, "buildah", "build", "--isolation", "chroot", "--pull=never", "--target", "runtime-prebuilt",
		"-f", filepath.Join("..", "..", "Dockerfile"), "-t", image, dir); err != nil {
		skipIfMachine(t, out, err)
		t.Fatal(err)
	}
	checkConfig(t, e, image)
	out, how := runImage(t, e, image, "--version")
	if want := "gatehouse " + version + "\n"; out != want {
		t.Fatalf("%s: gatehouse --version printed %q, want %q", how, out, want)
	}
	t.Logf("ran the image with %s", how)
	checkDataVolume(t, e, image, how)
}

// checkConfig reads the image's configuration: non-root, the data volume
// and the entry point.
func checkConfig(t *testing.T, e engine, image string) {
	out, err := e.run(t, "buildah", "inspect", "--type", "image", "--format",
		"{{.OCIv1.Config.User}}|{{range $k, $v := .OCIv1.Config.Volumes}}{{$k}}{{end}}|{{.OCIv1.Config.Entrypoint}}|{{.OCIv1.Config.Cmd}}", image)
	if err != nil {
		t.Fatal(err)
	}
	want := "65532:65532|/var/lib/gatehouse|[/usr/local/bin/gatehouse]|[serve]"
	if got := strings.TrimSpace(out); got != want {
		t.Errorf("image config %q, want %q", got, want)
	}
}

// runtimes are the ways podman is tried, in order. The ulimits are below
// any host's own: a sandbox may refuse raising them (podman's default),
// and Debian's crun refuses a hybrid cgroup hierarchy where runc runs.
var runtimes = [][]string{
	{"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"},
	{"--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"},
}

// runImage runs the image read-only with args under the first runtime that
// works here, and says which; it skips when none does.
func runImage(t *testing.T, e engine, image string, args ...string) (string, string) {
	var last string
	for _, rt := range runtimes {
		if i := indexOf(rt, "--runtime"); i >= 0 {
			if _, err := exec.LookPath(rt[i+1]); err != nil {
				continue
			}
		}
		out, err := podmanRun(t, e, rt, nil, image, args...)
		if err == nil {
			return out, "podman run " + strings.Join(rt, " ")
		}
		if !matches(out, runLimits) {
			t.Fatal(err)
		}
		t.Logf("podman run %s cannot run here: %v", strings.Join(rt, " "), err)
		last = out
	}
	t.Skipf("podman cannot run containers on this machine: %s", strings.TrimSpace(last))
	return "", ""
}

func podmanRun(t *testing.T, e engine, rt, extra []string, image string, args ...string) (string, error) {
	a := append([]string{"run", "--rm", "--read-only", "--network", "none", "--pull", "never"}, rt...)
	a = append(append(a, extra...), image)
	return e.run(t, "podman", append(a, args...)...)
}

// checkDataVolume has the image make its database in a volume, with the
// root file system read-only: everything gatehouse writes goes there, as
// the image's user.
func checkDataVolume(t *testing.T, e engine, image, how string) {
	data := t.TempDir()
	if err := os.Chown(data, 65532, 65532); err != nil {
		t.Skipf("cannot hand the volume to uid 65532: %v", err)
	}
	rt := strings.Fields(strings.TrimPrefix(how, "podman run "))
	// A bare command name, as `kubectl exec` and `docker exec` give it, is
	// found on the image's PATH.
	out, err := podmanRun(t, e, rt, []string{"-v", data + ":/var/lib/gatehouse", "--entrypoint", "gatehouse"}, image,
		"tokens", "create", "--db", "/var/lib/gatehouse/gatehouse.db", "--name", "ci", "--role", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "gat_") {
		t.Errorf("tokens create printed no token: %q", redact(out))
	}
	fi, err := os.Stat(filepath.Join(data, "gatehouse.db"))
	if err != nil {
		t.Fatalf("no database in the volume: %v", err)
	}
	if uid := ownerUID(fi); uid != 65532 {
		t.Errorf("database owned by uid %d, want 65532", uid)
	}
}

// redact keeps a token out of the test log.
func redact(s string) string {
	if i := strings.Index(s, "gat_"); i >= 0 {
		return s[:i] + "gat_[redacted]"
	}
	return s
}

func skipIfMachine(t *testing.T, out string, err error) {
	t.Helper()
	if matches(out, buildLimits) {
		t.Skipf("buildah cannot build images on this machine: %v", err)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func randomHex(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
