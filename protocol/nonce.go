package protocol

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrReplay reports a nonce that was already used by the same key.
var ErrReplay = errors.New("nonce already used")

// nonceShards spreads lock contention; a power of two keeps the pick a mask.
const nonceShards = 64

// noncePurgeEvery bounds how long expired nonces linger in a quiet shard.
const noncePurgeEvery = time.Minute

// nonceMinPurgeAt stops a small shard from purging on every insert.
const nonceMinPurgeAt = 1024

// NonceCache is an in-memory NonceStore for a single server. It is safe for
// concurrent use. Expired nonces are purged as a side effect of UseNonce, at
// least once a minute per shard and whenever a shard doubles in size, so
// memory follows the request rate over the replay window, not uptime.
// The zero value is ready to use.
type NonceCache struct {
	shards [nonceShards]nonceShard
}

type nonceShard struct {
	mu        sync.Mutex
	expires   map[string]time.Time
	nextPurge time.Time
	purgeAt   int
}

// NewNonceCache returns an empty NonceCache.
func NewNonceCache() *NonceCache {
	return &NonceCache{}
}

// UseNonce records nonce for fingerprint until expires. It returns an error
// wrapping ErrReplay if the pair is already recorded and not yet expired.
func (c *NonceCache) UseNonce(ctx context.Context, fingerprint, nonce string, expires time.Time) error {
	key := fingerprint + " " + nonce
	s := &c.shards[shardOf(key)]
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.maybePurge(now)
	if exp, ok := s.expires[key]; ok && now.Before(exp) {
		return fmt.Errorf("nonce cache: %w", ErrReplay)
	}
	if s.expires == nil {
		s.expires = make(map[string]time.Time)
	}
	s.expires[key] = expires
	return nil
}

// Len returns how many nonces are held, expired or not, for metrics and tests.
func (c *NonceCache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.expires)
		s.mu.Unlock()
	}
	return n
}

// Purge drops every expired nonce now; callers with idle periods may run it
// from a ticker, though UseNonce already keeps memory bounded.
func (c *NonceCache) Purge() {
	now := time.Now()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.purge(now)
		s.mu.Unlock()
	}
}

// maybePurge amortises purging: a full scan only after the shard has doubled
// or a minute has passed, so the cost per insert stays constant.
func (s *nonceShard) maybePurge(now time.Time) {
	if len(s.expires) >= s.purgeAt || !now.Before(s.nextPurge) {
		s.purge(now)
	}
}

func (s *nonceShard) purge(now time.Time) {
	for key, exp := range s.expires {
		if !now.Before(exp) {
			delete(s.expires, key)
		}
	}
	s.nextPurge = now.Add(noncePurgeEvery)
	s.purgeAt = max(2*len(s.expires), nonceMinPurgeAt)
}

// shardOf is FNV-1a; nonces are random, so a cheap hash spreads them well.
func shardOf(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h & (nonceShards - 1)
}
