package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"gatehouse/client"
)

// devicesSet renames or relabels an approved gateway. Labels are changed
// one by one on top of the gateway's current ones, which the server then
// receives as the whole new set.
func devicesSet(ctx context.Context, args []string, dio deviceIO) int {
	cmd := newDeviceCmd("set ID [--name NAME] [--label KEY=VALUE ...] [--unlabel KEY ...] [--clear-labels]", dio)
	name := cmd.fs.String("name", "", "a new name (refused, naming the backend, where a backend keeps the old one)")
	add := labelFlag{}
	cmd.fs.Var(add, "label", "set a label KEY=VALUE, repeatable")
	var drop listFlag
	cmd.fs.Var(&drop, "unlabel", "remove a label KEY, repeatable")
	clear := cmd.fs.Bool("clear-labels", false, "remove every label first")
	c, pos, err := cmd.start(args, 1, func() error {
		if *name == "" && len(add) == 0 && len(drop) == 0 && !*clear {
			return usageErrorf("give --name, --label, --unlabel or --clear-labels")
		}
		return nil
	})
	if err != nil {
		return cmd.exit(err)
	}
	var newName *string
	if *name != "" {
		newName = name
	}
	labels, err := newLabels(ctx, c, pos[0], add, drop, *clear)
	if err != nil {
		return cmd.exit(err)
	}
	d, err := c.Edit(ctx, pos[0], newName, labels)
	if err != nil {
		return cmd.exit(err)
	}
	return cmd.exit(cmd.print(d, func(w io.Writer) {
		fmt.Fprintf(w, "%s is %s, labels: %s\n", clean(d.ID), clean(d.Name), clean(labelList(d.Labels)))
	}))
}

// newLabels is the gateway's label set after the flags, or nil when they
// change no label.
func newLabels(ctx context.Context, c *client.Client, id string, add map[string]string, drop []string, clear bool) (*map[string]string, error) {
	if len(add) == 0 && len(drop) == 0 && !clear {
		return nil, nil
	}
	out := map[string]string{}
	if !clear {
		d, err := c.Device(ctx, id)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, d.Labels)
	}
	for _, k := range drop {
		delete(out, k)
	}
	maps.Copy(out, add)
	return &out, nil
}

func labelList(l map[string]string) string {
	if len(l) == 0 {
		return "(none)"
	}
	parts := make([]string, 0, len(l))
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// listFlag collects a repeated flag's values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
