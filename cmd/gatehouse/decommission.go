package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"gatehouse"
)

func devicesDecommission(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newDeviceCmd("decommission ID [--dry-run]", dio)
	dryRun := cmd.fs.Bool("dry-run", false, "only list what would be removed where; change nothing")
	c, pos, err := cmd.start(args, 1)
	if err != nil {
		return cmd.exit(err)
	}
	dec, err := c.Decommission(ctx, pos[0], *dryRun)
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(dec, func(w io.Writer) { writeDecommission(w, dec, time.Now()) }))
}

func devicesForget(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newDeviceCmd("forget ID", dio)
	c, pos, err := cmd.start(args, 1)
	if err != nil {
		return cmd.exit(err)
	}
	f, err := c.Forget(ctx, pos[0])
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(f, func(w io.Writer) {
		fmt.Fprintf(w, "forgot %s (was %s); its key %.16s… enrolls as a new gateway from now on\n",
			clean(f.DeviceID), clean(string(f.State)), clean(f.Fingerprint))
	}))
}

// writeDecommission prints a plan or a decommission's progress, one line
// per object each backend holds.
func writeDecommission(w io.Writer, dec *gatehouse.Decommission, now time.Time) {
	switch {
	case dec.DryRun:
		fmt.Fprintf(w, "Dry run for %s: nothing was changed.\n", clean(dec.DeviceID))
	case dec.At != nil:
		fmt.Fprintf(w, "%s decommissioned by %s %s; its key is refused from now on.\n",
			clean(dec.DeviceID), clean(dec.By), stampPtr(dec.At, now))
	}
	if len(dec.Backends) == 0 {
		fmt.Fprintln(w, "No backend holds anything of it.")
		return
	}
	writeRemovals(w, dec.Backends, dec.DryRun)
}

func writeRemovals(w io.Writer, backends []gatehouse.BackendRemoval, dryRun bool) {
	tw := newTable(w)
	if dryRun {
		fmt.Fprintln(tw, "BACKEND\tOBJECT\tRESULT")
	} else {
		fmt.Fprintln(tw, "BACKEND\tSTATE\tATTEMPTS\tOBJECT\tRESULT")
	}
	for _, b := range backends {
		lines := removalLines(b)
		for _, l := range lines {
			if dryRun {
				row(tw, b.Backend, l[0], l[1])
			} else {
				row(tw, b.Backend, dash(string(b.State)), fmt.Sprint(b.Attempts), l[0], l[1])
			}
		}
	}
	tw.Flush()
}

// removalLines are a backend's objects and results, or one line saying
// what it is at when it has no receipt yet.
func removalLines(b gatehouse.BackendRemoval) [][2]string {
	var out [][2]string
	for _, r := range b.Removals {
		out = append(out, [2]string{r.Object, r.Result})
	}
	switch {
	case b.LastError != "":
		out = append(out, [2]string{"-", "error: " + truncateText(b.LastError, 100)})
	case b.Waiting != "":
		out = append(out, [2]string{"-", b.Waiting})
	case len(out) == 0 && b.State == gatehouse.StepSucceeded:
		out = append(out, [2]string{"-", "held nothing"})
	case len(out) == 0 && b.State == "":
		out = append(out, [2]string{"-", "nothing to remove"})
	case len(out) == 0:
		out = append(out, [2]string{"-", "-"})
	}
	return out
}

// writeDecommissionSteps shows a decommissioned device's removal per
// backend on `devices show`.
func writeDecommissionSteps(w io.Writer, dec *gatehouse.Decommission) {
	if dec == nil {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Decommissioned by %s at %s.\n", clean(dec.By), dec.At.Format(time.RFC3339))
	if len(dec.Backends) == 0 {
		fmt.Fprintln(w, "Nothing was provisioned; nothing to remove.")
		return
	}
	writeRemovals(w, dec.Backends, false)
}
