package provision_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"gatehouse/provision"
)

// Info lines come out at debug, and only when debug is on; warnings and
// errors keep their level, and the attributes and groups added on the way
// stay.
func TestInfoAsDebug(t *testing.T) {
	for _, c := range []struct {
		level slog.Level
		want  []string // the lines logged, by their level= field
	}{
		{slog.LevelInfo, []string{"level=WARN msg=w", "level=ERROR msg=e"}},
		{slog.LevelDebug, []string{"level=DEBUG msg=d", "level=DEBUG msg=i", "level=WARN msg=w", "level=ERROR msg=e"}},
	} {
		var buf bytes.Buffer
		h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: c.level, ReplaceAttr: noTime})
		log := slog.New(provision.InfoAsDebug(provision.InfoAsDebug(h))).With("component", "river").WithGroup("g")
		if got := log.Enabled(context.Background(), slog.LevelInfo); got != (c.level == slog.LevelDebug) {
			t.Errorf("at %v: info enabled = %v", c.level, got)
		}
		log.Debug("d", "k", 1)
		log.Info("i", "k", 1)
		log.Warn("w", "k", 1)
		log.Error("e", "k", 1)
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != len(c.want) {
			t.Fatalf("at %v: logged\n%s\nwant %d lines", c.level, buf.String(), len(c.want))
		}
		for i, w := range c.want {
			if want := w + " component=river g.k=1"; lines[i] != want {
				t.Errorf("at %v: line %d is %q, want %q", c.level, i, lines[i], want)
			}
		}
	}
}

func noTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
