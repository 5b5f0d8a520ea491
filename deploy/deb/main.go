// Command deb builds the gatehouse-agent Debian package with nfpm: a static
// (CGO_ENABLED=0) build of cmd/gatehouse-agent, its systemd unit, the
// default /etc/gatehouse/agent.conf (a conffile) and maintainer scripts that
// enable the unit.
//
//	go run ./deploy/deb --arch arm64 --version 1.2.0 --out dist/
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("deb", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.arch, "arch", "amd64", "Debian architecture: "+archNames())
	fs.StringVar(&o.goarm, "goarm", "", "GOARM for arm builds (default 7 for armhf, 5 for armel)")
	fs.StringVar(&o.version, "version", "0.0.0~dev", "package version (a leading v is dropped)")
	fs.StringVar(&o.out, "out", "dist", "directory for the .deb")
	fs.StringVar(&o.src, "src", "", "module root (default: found from the working directory)")
	fs.StringVar(&o.maintainer, "maintainer", "gatehouse maintainers <gatehouse@example.com>", "Maintainer field")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	path, err := build(ctx, o)
	if err != nil {
		fmt.Fprintln(stderr, "deb:", err)
		return 1
	}
	fmt.Fprintln(stdout, path)
	return 0
}
