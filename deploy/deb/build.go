package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"

	"gatehouse/deploy"
)

//go:embed scripts
var scripts embed.FS

// Package name and install locations; the unit and agent.conf expect them.
const (
	pkgName  = "gatehouse-agent"
	binPath  = "/usr/bin/gatehouse-agent"
	unitPath = "/usr/lib/systemd/system/gatehouse-agent.service"
	// The renewal timer and the service it starts.
	renewUnitPath  = "/usr/lib/systemd/system/gatehouse-agent-renew.service"
	renewTimerPath = "/usr/lib/systemd/system/gatehouse-agent-renew.timer"
	confPath       = "/etc/gatehouse/agent.conf"
	docPath        = "/usr/share/doc/gatehouse-agent/agent.md"
)

// arch is how one Debian architecture is built with Go.
type arch struct{ goarch, goarm string }

var arches = map[string]arch{
	"amd64":   {"amd64", ""},
	"arm64":   {"arm64", ""},
	"armhf":   {"arm", "7"},
	"armel":   {"arm", "5"},
	"i386":    {"386", ""},
	"riscv64": {"riscv64", ""},
}

func archNames() string {
	names := make([]string, 0, len(arches))
	for n := range arches {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

type options struct {
	arch, goarm, version, out, src, maintainer string
}

// debVersion must start with a digit (Debian policy).
var debVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)

// build writes the .deb and returns its path.
func build(ctx context.Context, o options) (string, error) {
	a, ok := arches[o.arch]
	if !ok {
		return "", fmt.Errorf("unknown --arch %q: want one of %s", o.arch, archNames())
	}
	version := strings.TrimPrefix(o.version, "v")
	if !debVersion.MatchString(version) {
		return "", fmt.Errorf("invalid --version %q: want e.g. 1.2.0", o.version)
	}
	src, err := moduleRoot(o.src)
	if err != nil {
		return "", err
	}
	work, err := os.MkdirTemp("", "gatehouse-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "gatehouse-agent")
	if err := goBuild(ctx, src, bin, a, o.goarm, version); err != nil {
		return "", err
	}
	info, err := packageInfo(work, src, bin, o.arch, version, o.maintainer)
	if err != nil {
		return "", err
	}
	return writePackage(info, o.out)
}

// moduleRoot finds the gatehouse module: --src, or up from the working directory.
func moduleRoot(src string) (string, error) {
	dir := src
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	for d := dir; ; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.HasPrefix(string(data), "module gatehouse\n") {
			return d, nil
		}
		if filepath.Dir(d) == d || src != "" {
			return "", fmt.Errorf("no gatehouse go.mod at or above %s (pass --src)", dir)
		}
	}
}

// goBuild makes the static agent: no cgo, so it runs on any libc (glibc,
// musl) an image may have.
func goBuild(ctx context.Context, src, out string, a arch, goarm, version string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+version,
		"-o", out, "./cmd/gatehouse-agent")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+a.goarch, "GOFLAGS=-mod=readonly")
	if a.goarch == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+cmpOr(goarm, a.goarm))
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// packageInfo describes the package. nfpm reads contents from files, so
// the embedded unit, config and scripts are written into work first.
func packageInfo(work, src, bin, debArch, version, maintainer string) (*nfpm.Info, error) {
	staged := map[string][]byte{"gatehouse-agent.service": deploy.AgentUnit, "agent.conf": deploy.AgentConf,
		"gatehouse-agent-renew.service": deploy.RenewUnit, "gatehouse-agent-renew.timer": deploy.RenewTimer}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		data, err := scripts.ReadFile("scripts/" + s)
		if err != nil {
			return nil, err
		}
		staged[s] = data
	}
	for name, data := range staged {
		if err := os.WriteFile(filepath.Join(work, name), data, 0o644); err != nil {
			return nil, err
		}
	}
	mode := func(m os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Mode: m, Owner: "root", Group: "root"}
	}
	contents := files.Contents{
		{Source: bin, Destination: binPath, FileInfo: mode(0o755)},
		{Source: filepath.Join(work, "gatehouse-agent.service"), Destination: unitPath, FileInfo: mode(0o644)},
		{Source: filepath.Join(work, "gatehouse-agent-renew.service"), Destination: renewUnitPath, FileInfo: mode(0o644)},
		{Source: filepath.Join(work, "gatehouse-agent-renew.timer"), Destination: renewTimerPath, FileInfo: mode(0o644)},
		{Source: filepath.Join(work, "agent.conf"), Destination: confPath, Type: files.TypeConfig, FileInfo: mode(0o644)},
		{Destination: "/var/lib/gatehouse", Type: files.TypeDir, FileInfo: mode(0o700)},
	}
	if doc := filepath.Join(src, "docs", "agent.md"); fileExists(doc) {
		contents = append(contents, &files.Content{Source: doc, Destination: docPath, FileInfo: mode(0o644)})
	}
	info := &nfpm.Info{
		Name: pkgName, Arch: debArch, Platform: "linux", Version: version, VersionSchema: "none",
		Section: "admin", Priority: "optional", Maintainer: maintainer,
		Description: "gatehouse gateway agent\nEnrolls this gateway with a gatehouse server using its Mender device key,\n" +
			"waits for an operator's approval and installs the credentials it receives\n(IoT Edge configuration, certificate), then restarts Mender and IoT Edge.\n" +
			"A daily timer renews the certificate before it expires.",
		MTime: time.Unix(0, 0).UTC(), // reproducible: same inputs, same .deb
		Overridables: nfpm.Overridables{
			Contents:   contents,
			Recommends: []string{"mender-client | mender-auth", "aziot-edge"},
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(work, "postinst"),
				PreRemove:   filepath.Join(work, "prerm"),
				PostRemove:  filepath.Join(work, "postrm"),
			},
		},
	}
	return nfpm.WithDefaults(info), nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writePackage runs nfpm's deb packager into outDir, atomically so a failed
// build leaves no truncated .deb behind.
func writePackage(info *nfpm.Info, outDir string) (path string, err error) {
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return "", fmt.Errorf("package contents: %w", err)
	}
	pkger, err := nfpm.Get("deb")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	path = filepath.Join(outDir, pkger.ConventionalFileName(info))
	f, err := os.CreateTemp(outDir, ".deb-*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if err := pkger.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("build package: %w", err)
	}
	if err := errors.Join(f.Chmod(0o644), f.Close()); err != nil {
		return "", err
	}
	return path, os.Rename(f.Name(), path)
}
