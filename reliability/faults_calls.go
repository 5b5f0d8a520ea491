package main

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"gatehouse"
	"gatehouse/simulate"
)

// Counting calls per gateway: each simulator's recorder keeps what it was
// asked, and at the end every request is put down to the gateway it names
// (its name, MAC, Mender device id, registration id or a certificate
// serial of its) in its path, query or body. Listings and the like name
// none and are counted as shared.

// Bounds on calls, from the retry policies (rest.Client, provision.Config).
const (
	// restTries is how often the backend clients send one call: the first
	// try and rest.Client's default 4 retries.
	restTries = 5
	// callsPerAttempt is more calls than one attempt of any step, or one
	// approval's name check, makes: Mender's step preauthorizes, reads the
	// device, forces its key and sets and reads back the name tag up to 5
	// times (13); Vault's lists what a lost attempt issued, revokes it and
	// signs; DPS's reads, creates and reads back.
	callsPerAttempt = 16
	// retryBase and followPollMin are serve's defaults: a failed step is
	// tried again after retryBase, doubling, with jitter down to half; the
	// IoT Hub follow-up looks at most every followPollMin.
	retryBase     = time.Second
	followPollMin = 2 * time.Second
)

// attemptsWithin is the most attempts of one step the retry policy allows
// within d: attempt k comes at least retryBase·(2^(k-1)−1)/2 after the
// first, so k ≤ 1 + log2(2d/retryBase + 1).
func attemptsWithin(d time.Duration) int {
	return 1 + int(math.Log2(2*d.Seconds()/retryBase.Seconds()+1))
}

// looksWithin is the most looks the IoT Hub follow-up takes within d,
// with failed ones retried on the step policy besides.
func looksWithin(d time.Duration) int {
	return 1 + int(d/followPollMin) + attemptsWithin(d)
}

// callLog keeps the requests one simulator received.
type callLog struct {
	mu    sync.Mutex
	calls []simulate.Call
}

// keepBody is how much of a body is kept: enough for a name, a MAC or a
// serial, which come before any key or CSR in these requests.
const keepBody = 4 << 10

func (l *callLog) record(c simulate.Call) {
	if len(c.Body) > keepBody {
		c.Body = c.Body[:keepBody]
	}
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}

func (l *callLog) snapshot() []simulate.Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// recordCalls starts a call log on every backend.
func recordCalls(b *Backends) map[string]*callLog {
	logs := map[string]*callLog{}
	for _, name := range backendNames {
		l := &callLog{}
		logs[name] = l
		b.server(name).Faults.SetRecorder(l.record)
	}
	return logs
}

func stopRecording(b *Backends) {
	for _, name := range backendNames {
		b.server(name).Faults.SetRecorder(nil)
	}
}

// tokenPattern finds the words of a request that can name a gateway.
var tokenPattern = regexp.MustCompile(`[A-Za-z0-9][A-Za-z0-9:._-]*`)

// gatewayTokens maps every identifier of a gateway that a backend request
// may carry to the gateway's name.
func gatewayTokens(devices map[string]*gatehouse.Device, b *Backends) map[string]string {
	out := map[string]string{}
	for _, d := range devices {
		for _, tok := range []string{d.Name, d.MAC, d.ID, stepOut(d, gatehouse.StepMender, gatehouse.OutMenderDeviceID),
			stepOut(d, gatehouse.StepDPS, gatehouse.OutDPSRegistrationID)} {
			if tok != "" {
				out[tok] = d.Name
			}
		}
	}
	// Every certificate the PKI issued, revoked ones too: a revocation of
	// what a lost attempt issued names only its serial.
	for _, c := range b.Vault.State.Certificates() {
		if cn := commonName(c.CertificatePEM); cn != "" {
			if _, ours := out[cn]; ours {
				out[c.Serial] = cn
			}
		}
	}
	return out
}

// callCounts are one backend's requests, by the gateway each named.
type callCounts struct {
	perGateway map[string]int
	shared     int
	total      int
}

func attribute(calls []simulate.Call, tokens map[string]string) callCounts {
	cc := callCounts{perGateway: map[string]int{}, total: len(calls)}
	for _, c := range calls {
		if name := whose(c, tokens); name != "" {
			cc.perGateway[name]++
		} else {
			cc.shared++
		}
	}
	return cc
}

func whose(c simulate.Call, tokens map[string]string) string {
	path, _ := url.PathUnescape(c.Path)
	query, _ := url.QueryUnescape(c.Query)
	for _, part := range []string{path, query, string(c.Body)} {
		for _, tok := range tokenPattern.FindAllString(part, -1) {
			if name, ok := tokens[strings.TrimRight(tok, ":.-")]; ok {
				return name
			}
		}
	}
	return ""
}

// stepsTouching lists, per backend, the steps that call it.
var stepsTouching = map[string][]gatehouse.StepName{
	"mender": {gatehouse.StepMender},
	"dps":    {gatehouse.StepDPS, gatehouse.StepHub},
	"vault":  {gatehouse.StepVault},
	"iothub": {gatehouse.StepHub},
}

// checksNames says whether an approval asks the backend whether the name
// is free (Vault's PKI reserves no names).
func checksNames(backend string) bool { return backend != "vault" }

// callBound is the most requests the gateway's steps and approvals may
// send one backend: callsPerAttempt calls of restTries tries for every
// attempt the server recorded and every approval request.
func callBound(backend string, d *gatehouse.Device, approvals int) int {
	attempts := 0
	for _, s := range stepsTouching[backend] {
		if st := stepOf(d, s); st != nil {
			attempts += st.Attempts
		}
	}
	if checksNames(backend) {
		attempts += approvals
	}
	return restTries * callsPerAttempt * max(attempts, 1)
}

// callFigures counts each backend's calls per gateway, checks each
// gateway's against its bound, and checks each step's attempts against
// what the retry policy allows within took. It returns a note per backend
// and the problems found.
func (f *fleet) callFigures(logs map[string]*callLog, devices map[string]*gatehouse.Device, took time.Duration) (notes, details []string, problems []string) {
	tokens := gatewayTokens(devices, f.b)
	for _, backend := range backendNames {
		cc := attribute(logs[backend].snapshot(), tokens)
		maxCalls, maxName, sum := 0, "", 0
		for _, g := range f.gws {
			d := devices[g.MAC]
			if d == nil {
				continue
			}
			n := cc.perGateway[d.Name]
			sum += n
			if n > maxCalls {
				maxCalls, maxName = n, d.Name
			}
			if bound := callBound(backend, d, f.approvalTries(g.MAC)); n > bound {
				problems = append(problems, fmt.Sprintf("%s took %d %s calls, over its bound of %d (a hot loop?)", d.Name, n, backend, bound))
			}
		}
		mean := float64(sum) / float64(len(f.gws))
		notes = append(notes, fmt.Sprintf("%s %.1f/gw max %d", backend, mean, maxCalls))
		details = append(details, fmt.Sprintf("  %-7s %6d calls: %.1f a gateway, the most %d (%s), %d shared (listings, logins)",
			backend, cc.total, mean, maxCalls, maxName, cc.shared))
	}
	problems = append(problems, f.attemptProblems(devices, took)...)
	return notes, details, problems
}

// attemptProblems finds steps tried more often than the retry policy
// allows within took: a step retried without its backoff.
func (f *fleet) attemptProblems(devices map[string]*gatehouse.Device, took time.Duration) []string {
	var out []string
	for _, d := range devices {
		for _, st := range d.Steps {
			bound := attemptsWithin(took)
			if st.Name == gatehouse.StepHub {
				bound = looksWithin(took)
			}
			if st.Attempts > bound {
				out = append(out, fmt.Sprintf("%s's %s step took %d attempts in %v, more than the retry policy allows (%d)",
					d.Name, st.Name, st.Attempts, took.Round(time.Second), bound))
			}
		}
	}
	return out
}
