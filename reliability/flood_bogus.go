package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"time"

	"gatehouse/protocol"
)

// bogusSender sends enrollments from one loopback address, each of a key
// made for it, validly signed: what a flood that passes every check but
// the limits looks like.
type bogusSender struct {
	url    string
	client *http.Client
}

func newBogusSender(url string, ip net.IP, conns int) *bogusSender {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	// Idle connections go before the server's idle timeout could close one
	// under a request.
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: conns, IdleConnTimeout: 30 * time.Second}
	return &bogusSender{url: url, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// enroll sends one enrollment of a fresh key and returns the status.
func (s *bogusSender) enroll(ctx context.Context) (int, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return 0, err
	}
	seal := make([]byte, 32)
	rand.Read(seal)
	mac := make([]byte, 6)
	rand.Read(mac)
	mac[0] = 0x06 // locally administered, unicast, and never the agents' 02:
	body, err := json.Marshal(protocol.EnrollRequest{MAC: net.HardwareAddr(mac).String(), SealKey: seal})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", s.url+protocol.PathEnroll, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if err := protocol.SignRequest(req, body, key, time.Now()); err != nil {
		return 0, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (s *bogusSender) close() { s.client.CloseIdleConnections() }
