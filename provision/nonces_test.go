package provision_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"gatehouse/protocol"
)

func TestUseNonceReplayAndPrune(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	live, dead := time.Now().Add(time.Hour), time.Now().Add(-time.Minute)
	if err := tb.svc.UseNonce(ctx, "fp", "live", live); err != nil {
		t.Fatal(err)
	}
	if err := tb.svc.UseNonce(ctx, "fp", "dead", dead); err != nil {
		t.Fatal(err)
	}
	if err := tb.svc.UseNonce(ctx, "fp", "live", live); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("second use: %v, want ErrReplay", err)
	}
	if _, err := tb.svc.PruneNonces(ctx); err != nil {
		t.Fatal(err)
	}
	// Pruning keeps what is still inside the window.
	if err := tb.svc.UseNonce(ctx, "fp", "live", live); !errors.Is(err, protocol.ErrReplay) {
		t.Fatalf("use after prune: %v, want ErrReplay", err)
	}
}
