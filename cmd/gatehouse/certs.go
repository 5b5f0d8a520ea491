package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"gatehouse"
	"gatehouse/client"
	"gatehouse/server"
)

const certsHelp = `usage: gatehouse certs COMMAND [FLAGS]

Commands:
  expiring [--within 14d]   the fleet's certificates that expire within the horizon (whole days
                            such as 14d, or a duration such as 36h), soonest first; expired ones too
  list ID                   every certificate kept for one gateway: the provisioning one and each
                            renewal, with its expiry and whether it was revoked

Gateways renew their own certificates (gatehouse-agent renew, from a daily timer); a certificate
in the expiring list belongs to a gateway that has not, for example because it is off line.

Flags of every command:
  --server URL     gatehouse server: a URL, or HOST:PORT for http://HOST:PORT (https when the
                   port is 443) (env GATEHOUSE_SERVER, default http://127.0.0.1:8080)
  --token TOKEN    an API token, viewer role at least (env GATEHOUSE_TOKEN)
  -o json|table    output format (default table)
`

var certsGroup = &group{name: "certs", help: certsHelp, cmds: []namedSub{
	{"expiring", certsExpiring},
	{"list", certsList},
}}

// runCerts shows certificates. Exit codes: 0 ok, 1 API or network error,
// 2 usage error.
func runCerts(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return dispatch(ctx, certsGroup, args, deviceIO{stdout: stdout, stderr: stderr, getenv: getenv})
}

func certsExpiring(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAPICmd("certs", "expiring [--within 14d]", "", dio)
	within := cmd.fs.String("within", "14d", "horizon: whole days such as 14d, or a duration such as 36h")
	c, _, err := cmd.start(args, 0, func() error {
		if _, err := server.ParseWithin(*within); err != nil {
			return usageErrorf("--within: %s", gatehouse.ErrorMessage(err))
		}
		return nil
	})
	if err != nil {
		return cmd.exit(err)
	}
	list, err := c.CertsExpiring(ctx, *within)
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(list, func(w io.Writer) { writeExpiring(w, list, time.Now()) }))
}

func certsList(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newAPICmd("certs", "list ID", "device ID", dio)
	c, pos, err := cmd.start(args, 1)
	if err != nil {
		return cmd.exit(err)
	}
	certs, err := c.Certificates(ctx, pos[0])
	if err != nil {
		return cmd.exit(err)
	}
	out := struct {
		Certificates []gatehouse.DeviceCert `json:"certificates"`
	}{certs}
	return cmd.exit(cmd.print(out, func(w io.Writer) { writeCerts(w, certs, time.Now()) }))
}

func writeExpiring(w io.Writer, list *client.ExpiringCerts, now time.Time) {
	if len(list.Certificates) == 0 {
		fmt.Fprintf(w, "no certificate expires within %s\n", list.Within)
		return
	}
	tw := newTable(w)
	row(tw, "NAME", "DEVICE", "STATE", "SERIAL", "NOT AFTER", "EXPIRES", "ORIGIN")
	for _, c := range list.Certificates {
		row(tw, c.Name, c.DeviceID, string(c.State), c.Serial, c.NotAfter.UTC().Format(time.RFC3339), expiresIn(c.NotAfter, now), c.Origin)
	}
	tw.Flush()
}

func writeCerts(w io.Writer, certs []gatehouse.DeviceCert, now time.Time) {
	if len(certs) == 0 {
		fmt.Fprintln(w, "gatehouse keeps no certificate for this gateway")
		return
	}
	tw := newTable(w)
	row(tw, "SERIAL", "ORIGIN", "ISSUED", "NOT AFTER", "STATUS")
	for _, c := range certs {
		status := expiresIn(c.NotAfter, now)
		if c.RevokedAt != nil {
			status = "revoked " + c.RevokedAt.UTC().Format(time.RFC3339)
		}
		row(tw, c.Serial, c.Origin, c.IssuedAt.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), status)
	}
	tw.Flush()
}

// expiresIn says how long a certificate has left, in days once that is
// more than two.
func expiresIn(notAfter, now time.Time) string {
	d := notAfter.Sub(now)
	switch {
	case d <= 0:
		return "expired"
	case d > 48*time.Hour:
		return fmt.Sprintf("in %d days", int(d/(24*time.Hour)))
	}
	return "in " + d.Round(time.Minute).String()
}
