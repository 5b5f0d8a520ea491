package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"gatehouse/protocol"
)

// answer is one HTTP answer as the disk scenario judges it.
type answer struct {
	Status     int
	RetryAfter string
	Code       string // the JSON error's code, if any
	Message    string
	Reason     string // /readyz's reason, if any
}

func (a answer) String() string {
	return fmt.Sprintf("%d %s %q (reason %q, Retry-After %q)", a.Status, a.Code, a.Message, a.Reason, a.RetryAfter)
}

// enrollSigned sends one signed enrollment for g, as its agent would, and
// returns the answer and, on 200, the status.
func enrollSigned(ctx context.Context, base string, g *Gateway) (answer, *protocol.Status, error) {
	sk, err := protocol.DeriveSealKey(g.Key)
	if err != nil {
		return answer{}, nil, err
	}
	body, err := json.Marshal(protocol.EnrollRequest{MAC: g.MAC, SealKey: sk.PublicKey().Bytes()})
	if err != nil {
		return answer{}, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+protocol.PathEnroll, bytes.NewReader(body))
	if err != nil {
		return answer{}, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := protocol.SignRequest(req, body, g.Key, time.Now()); err != nil {
		return answer{}, nil, err
	}
	var st protocol.Status
	a, err := send(req, &st)
	if err != nil || a.Status != http.StatusOK {
		return a, nil, err
	}
	return a, &st, nil
}

// get asks base+path with no credentials (the public endpoints).
func get(ctx context.Context, base, path string) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return answer{}, err
	}
	return send(req, nil)
}

// send does req and reads its answer; a 200's JSON goes into out.
func send(req *http.Request, out any) (answer, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return answer{}, err
	}
	a := answer{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode == http.StatusOK {
		if out != nil {
			return a, json.Unmarshal(data, out)
		}
		return a, nil
	}
	var body struct {
		Reason string `json:"reason"`
		Error  struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	json.Unmarshal(data, &body)
	a.Code, a.Message, a.Reason = body.Error.Code, body.Error.Message, body.Reason
	return a, nil
}
