// Package uitest drives the operator page in a real headless Chromium
// against a real gatehouse server with simulated backends and gateways.
// It holds only tests; run them with `go test ./ui/...`. They skip with a
// message where no Chromium is installed (set GATEHOUSE_CHROMIUM to point at
// one), and write screenshots of the main views into the directory named by
// GATEHOUSE_SCREENSHOTS.
package uitest
