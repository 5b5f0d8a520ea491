package provision

import (
	"fmt"
	"testing"
	"time"
)

// TestRefusalLimiterBoundsMemory floods the limiter from more sources than
// it tracks: newcomers share one window, so memory and entries stay bounded,
// and ended windows make room again.
func TestRefusalLimiterBoundsMemory(t *testing.T) {
	var l refusalLimiter
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	for i := range maxRefusalSources {
		if _, shared, ok := l.admit(refusedCredentials, fmt.Sprint("10.0.", i/256, ".", i%256), now); !ok || shared {
			t.Fatalf("source %d: ok %v shared %v", i, ok, shared)
		}
	}
	if _, shared, ok := l.admit(refusedCredentials, "192.0.2.1", now); !ok || !shared {
		t.Fatalf("the first source over the limit: ok %v shared %v, want an entry for the shared window", ok, shared)
	}
	for i := range 1000 {
		if _, _, ok := l.admit(refusedCredentials, fmt.Sprint("192.0.3.", i), now.Add(time.Second)); ok {
			t.Fatalf("newcomer %d over the limit got an entry of its own", i)
		}
	}
	if n := len(l.windows); n > maxRefusalSources+1 {
		t.Fatalf("%d windows kept, want at most %d", n, maxRefusalSources+1)
	}
	later := now.Add(refusalWindow + 2*time.Second)
	suppressed, shared, ok := l.admit(refusedCredentials, "198.51.100.1", later)
	if !ok || shared || suppressed != 0 {
		t.Fatalf("after the windows ended: ok %v shared %v suppressed %d", ok, shared, suppressed)
	}
	if n := len(l.windows); n != 1 {
		t.Errorf("%d windows after pruning, want 1", n)
	}
}

func TestRefusalLimiterCountsPerSourceAndKind(t *testing.T) {
	var l refusalLimiter
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	admit := func(kind, source string, at time.Duration) (int, bool) {
		n, _, ok := l.admit(kind, source, now.Add(at))
		return n, ok
	}
	if _, ok := admit(refusedCredentials, "a", 0); !ok {
		t.Fatal("first refusal not admitted")
	}
	for i := range 5 {
		if _, ok := admit(refusedCredentials, "a", time.Duration(i)*time.Second); ok {
			t.Fatalf("repeat %d admitted within the window", i)
		}
	}
	if _, ok := admit(deniedAccess, "a", time.Second); !ok {
		t.Error("another kind from the same source shares its window")
	}
	if _, ok := admit(refusedCredentials, "b", time.Second); !ok {
		t.Error("another source shares the window")
	}
	if n, ok := admit(refusedCredentials, "a", refusalWindow); !ok || n != 5 {
		t.Errorf("after the window: ok %v, suppressed %d, want 5", ok, n)
	}
}
