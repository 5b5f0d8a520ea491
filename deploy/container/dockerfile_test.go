package container

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stage is one FROM section of the Dockerfile: its base, name and lines.
type stage struct {
	from, name string
	lines      []string
}

// readStages splits the Dockerfile into its stages, joining continued
// lines and dropping comments.
func readStages(t *testing.T) []stage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var cur string
	for _, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && cur == "") {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur += strings.TrimSpace(more) + " "
			continue
		}
		line, cur = cur+line, ""
		if f := strings.Fields(line); len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			s := stage{from: f[1]}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				s.name = f[3]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) > 0 && line != "" {
			stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, line)
		}
	}
	return stages
}

func findStage(t *testing.T, stages []stage, name string) (int, stage) {
	t.Helper()
	i := slices.IndexFunc(stages, func(s stage) bool { return s.name == name })
	if i < 0 {
		t.Fatalf("Dockerfile has no stage %q", name)
	}
	return i, stages[i]
}

// settings are a stage's lines after its COPYs: what the image runs as.
func settings(s stage) []string {
	var out []string
	for _, l := range s.lines {
		if !strings.HasPrefix(l, "COPY ") {
			out = append(out, l)
		}
	}
	return out
}

// TestRuntimeStages keeps the two ways of building the image giving the same
// image: both start from scratch, set the same user, volume and entry point,
// and the prebuilt one comes before any stage that needs a base image.
func TestRuntimeStages(t *testing.T) {
	stages := readStages(t)
	pi, pre := findStage(t, stages, "runtime-prebuilt")
	ri, src := findStage(t, stages, "runtime")
	if pi != 0 {
		t.Errorf("runtime-prebuilt is stage %d; it must be the first, so building it never reaches a stage with a base image", pi)
	}
	if ri != len(stages)-1 {
		t.Errorf("runtime is stage %d of %d; it must be the last, the default target", ri, len(stages))
	}
	for _, s := range []stage{pre, src} {
		if s.from != "scratch" {
			t.Errorf("stage %s is FROM %s, want scratch", s.name, s.from)
		}
	}
	if a, b := settings(pre), settings(src); !slices.Equal(a, b) {
		t.Errorf("runtime stages differ:\nruntime-prebuilt: %q\nruntime:          %q", a, b)
	}
	want := []string{"USER 65532:65532", `VOLUME ["/var/lib/gatehouse"]`, `ENTRYPOINT ["/usr/local/bin/gatehouse"]`}
	for _, w := range want {
		if !slices.Contains(src.lines, w) {
			t.Errorf("runtime stage lacks %q", w)
		}
	}
	for _, l := range pre.lines {
		if strings.Contains(l, "--from=") {
			t.Errorf("runtime-prebuilt takes files from another stage: %q", l)
		}
	}
}
