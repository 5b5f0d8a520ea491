package main

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"gatehouse/agent"
	"gatehouse/protocol"
)

// WatchedAgent is a real agent run in this process from a loopback address
// of its own, as a gateway on its own site would connect, watched from
// outside: when its enrollment was first answered and with what status,
// and when it held its verification code (its pending status).
type WatchedAgent struct {
	Gateway *Gateway
	Started time.Time
	// Answered is closed at the first answer to its enrollment, Pending
	// when it prints its verification code, Done when Run returned.
	Answered, Pending, Done chan struct{}

	mu        sync.Mutex
	answerIn  time.Duration
	status    int
	pendingIn time.Duration
	result    *agent.Result
	err       error
	polls     atomic.Int64 // wait requests answered

	client *http.Client
	cancel context.CancelFunc
}

// StartAgent runs g's agent against server from ip until it holds its
// bundle or ctx ends.
func StartAgent(ctx context.Context, g *Gateway, server string, ip net.IP) *WatchedAgent {
	w := &WatchedAgent{Gateway: g, Started: time.Now(), Answered: make(chan struct{}), Pending: make(chan struct{}),
		Done: make(chan struct{})}
	ctx, w.cancel = context.WithCancel(ctx)
	w.client = agent.NewHTTPClient()
	tr := w.client.Transport.(*http.Transport)
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}).DialContext
	w.client.Transport = &enrollWatch{base: tr, w: w}
	cfg := agent.Config{Server: server, InsecureHTTP: true, KeyPath: g.KeyPath, OutDir: g.OutDir, MAC: g.MAC,
		RestartCommands: []string{}, Logger: quiet, HTTPClient: w.client, Banner: bannerWatch{w},
		BackoffMin: 200 * time.Millisecond, BackoffMax: 5 * time.Second}
	go func() {
		res, err := agent.Run(ctx, cfg)
		// The agent's kept-alive connections would otherwise hold a server
		// goroutine and file each until their idle timeout.
		tr.CloseIdleConnections()
		w.mu.Lock()
		w.result, w.err = res, err
		w.mu.Unlock()
		w.cancel()
		close(w.Done)
	}()
	return w
}

// Stop ends the agent and waits until it has.
func (w *WatchedAgent) Stop() {
	w.cancel()
	<-w.Done
}

// FirstAnswer is how long the enrollment took to be answered and the
// status it was answered with; 0, 0 before any answer.
func (w *WatchedAgent) FirstAnswer() (time.Duration, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.answerIn, w.status
}

// PendingIn is how long the agent took to hold its pending status, 0
// before it did.
func (w *WatchedAgent) PendingIn() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pendingIn
}

// Polls is how many of the agent's waits were answered.
func (w *WatchedAgent) Polls() int { return int(w.polls.Load()) }

// Err is what Run returned, once Done is closed.
func (w *WatchedAgent) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// enrollWatch notes the first answer to an enrollment.
type enrollWatch struct {
	base http.RoundTripper
	w    *WatchedAgent
	once sync.Once
}

func (e *enrollWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := e.base.RoundTrip(req)
	if err == nil && req.URL.Path == protocol.PathWait {
		e.w.polls.Add(1)
	}
	if err == nil && req.URL.Path == protocol.PathEnroll {
		e.once.Do(func() {
			e.w.mu.Lock()
			e.w.answerIn, e.w.status = time.Since(e.w.Started), resp.StatusCode
			e.w.mu.Unlock()
			close(e.w.Answered)
		})
	}
	return resp, err
}

// bannerWatch closes Pending at the agent's first banner line, which it
// prints as soon as the server answered with the verification code.
type bannerWatch struct{ w *WatchedAgent }

func (b bannerWatch) Write(p []byte) (int, error) {
	b.w.mu.Lock()
	first := b.w.pendingIn == 0
	if first {
		b.w.pendingIn = max(time.Since(b.w.Started), time.Nanosecond)
	}
	b.w.mu.Unlock()
	if first {
		close(b.w.Pending)
	}
	return len(p), nil
}

// loopbackIP is the i-th address from 127.0.block.1 on: 250 a block, then
// the next block. Linux routes all of 127/8 to lo, so each is a distinct
// source address to the server.
func loopbackIP(block, i int) net.IP {
	return net.IPv4(127, 0, byte(block+i/250), byte(1+i%250))
}
