package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"gatehouse"
	"gatehouse/agent"
	"gatehouse/internal/pgtest"
	"gatehouse/protocol"
	"gatehouse/provision"
	"gatehouse/server"
	"gatehouse/store"
)

// BenchmarkStores runs the check-in and approval measurements on SQLite,
// on PostgreSQL and on two replicas sharing PostgreSQL, and prints them in
// one table:
//   - check-ins: signed device waits that answer at once, 32 in flight, for
//     200 enrolled gateways (spread over both replicas where there are two);
//   - approve→bundle: 100 real agents and zero-latency simulated backends;
//     on two replicas each agent long-polls one and is approved on the other;
//   - wake-up: the same without backends, so approval releases the bundle at
//     once and the figure is the long poll's wake-up alone (across replicas
//     on two).
//
// The PostgreSQL rows need GATEHOUSE_TEST_POSTGRES.
func BenchmarkStores(b *testing.B) {
	for b.Loop() {
		type row struct {
			name          string
			checkins      float64
			full, wakeups []time.Duration
		}
		var rows []row
		for _, setup := range []struct {
			name     string
			replicas int
			dsn      func() string
		}{
			{"sqlite", 1, func() string { return filepath.Join(b.TempDir(), "bench.db") }},
			{"postgres", 1, func() string { return pgtest.URL(b) }},
			{"postgres, 2 replicas", 2, func() string { return pgtest.URL(b) }},
		} {
			if setup.name != "sqlite" && os.Getenv(pgtest.Env) == "" {
				fmt.Printf("%-22s skipped: set %s\n", setup.name, pgtest.Env)
				continue
			}
			r := row{name: setup.name}
			r.checkins = checkins(b, startReplicas(b, setup.dsn(), setup.replicas, nil))
			r.full = crossApprove(b, startReplicas(b, setup.dsn(), setup.replicas, simulatedBackends(b)), 100).toBundle
			r.wakeups = crossApprove(b, startReplicas(b, setup.dsn(), setup.replicas, nil), 100).toBundle
			rows = append(rows, r)
		}
		fmt.Printf("\n%-22s %14s %10s %10s %14s %14s\n", "store", "check-ins/s", "ratio", "bundle p50", "bundle p99", "wake-up p99")
		for _, r := range rows {
			fmt.Printf("%-22s %14.0f %9.2fx %10v %14v %14v\n", r.name, r.checkins, r.checkins/rows[0].checkins,
				pct(r.full, 50).Round(100*time.Microsecond), pct(r.full, 99).Round(100*time.Microsecond),
				pct(r.wakeups, 99).Round(100*time.Microsecond))
		}
		fmt.Println("ratio: check-ins/s against SQLite in the same run; wake-up target across replicas: p99 < 100 ms")
	}
}

// replicaSet is one or more servers on one database.
type replicaSet struct {
	fleets []*fleet
	stop   func()
}

// startService opens the store at dsn and starts a service on it with
// cfg; stop stops the service and closes the store.
func startService(b *testing.B, dsn string, cfg provision.Config) (db *store.DB, svc *provision.Service, stop func()) {
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	// As serve does (startApp): one server per SQLite file, nonces logged.
	if err := db.ClaimNonces(ctx); err != nil {
		db.Close()
		b.Fatal(err)
	}
	if svc, err = provision.New(db, cfg); err != nil {
		db.Close()
		b.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		db.Close()
		b.Fatal(err)
	}
	return db, svc, func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Stop(c)
		db.Close()
	}
}

// serveOn starts a server for svc on a loopback port; stop closes it.
func serveOn(b *testing.B, svc *provision.Service, deviceRate rate.Limit) (srv *server.Server, stop func()) {
	srv = server.New(svc)
	srv.Addr, srv.DeviceRate = "127.0.0.1:0", deviceRate
	if err := srv.Open(); err != nil {
		b.Fatal(err)
	}
	return srv, func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close(c)
	}
}

func startReplicas(b *testing.B, dsn string, n int, backends []gatehouse.Backend) *replicaSet {
	ctx := context.Background()
	set := &replicaSet{}
	var stops []func()
	for range n {
		_, svc, stopService := startService(b, dsn, provision.Config{Backends: backends})
		srv, stopServer := serveOn(b, svc, rate.Inf)
		set.fleets = append(set.fleets, &fleet{url: srv.URL(), svc: svc})
		stops = append(stops, func() {
			stopServer()
			stopService()
		})
	}
	token, _, err := set.fleets[0].svc.CreateToken(ctx, provision.TokenSpec{Name: "bench", Role: gatehouse.RoleOperator})
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range set.fleets {
		f.token = token
	}
	set.stop = func() {
		for _, s := range stops {
			s()
		}
	}
	return set
}

// checkins enrolls 200 keys, then sends signed waits for them that answer
// at once, round robin over the replicas, and returns requests per second.
func checkins(b *testing.B, set *replicaSet) float64 { return checkinsSigned(b, set, false) }

// sessionCheckins is checkins with the waits signed with the session each
// enrollment's answer granted, as the agent signs its re-polls.
func sessionCheckins(b *testing.B, set *replicaSet) float64 { return checkinsSigned(b, set, true) }

func checkinsSigned(b *testing.B, set *replicaSet, sessions bool) float64 {
	defer set.stop()
	const warm, requests = 2000, 20000
	send, stop := checkinSender(b, set, sessions)
	defer stop()
	// The warm-up opens the connections and fills what a running server
	// keeps (parsed keys, statuses, statement caches), so the rate measured
	// is the steady state a fleet sees, not a cold start.
	send(warm)
	start := time.Now()
	send(requests)
	return requests / time.Since(start).Seconds()
}

// checkinSender enrolls 200 keys, round robin over set's replicas, and
// returns send, which sends n signed waits for them that answer at once,
// 32 in flight on keep-alive connections, signed with the device keys or,
// with sessions, with the sessions their enrollments granted, as the agent
// signs its re-polls. stop closes the connections.
func checkinSender(b *testing.B, set *replicaSet, sessions bool) (send func(n int), stop func()) {
	const keys, inFlight = 200, 32
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlight}}
	ks := make([]ed25519.PrivateKey, keys)
	grants := make([]*protocol.SessionGrant, keys)
	for i := range ks {
		_, ks[i], _ = ed25519.GenerateKey(rand.Reader)
		url := set.fleets[i%len(set.fleets)].url + protocol.PathEnroll
		st, err := signedStatus(context.Background(), c, url, enrollBody(i), ks[i])
		if err != nil {
			b.Fatalf("enroll: %v", err)
		}
		if sessions && st.Session == nil {
			b.Fatal("enroll granted no session")
		}
		grants[i] = st.Session
	}
	wait, _ := json.Marshal(protocol.WaitRequest{State: ""})
	return func(n int) {
		parallel(n, inFlight, func(i int) bool {
			url := set.fleets[i%len(set.fleets)].url + protocol.PathWait
			code := 0
			if sessions {
				code = sessionPost(b, c, url, wait, grants[i%keys])
			} else {
				code = signedPost(b, c, url, wait, ks[i%keys])
			}
			if code != http.StatusOK {
				b.Errorf("wait: %d", code)
				return false
			}
			return true
		})
	}, c.CloseIdleConnections
}

func sessionPost(b *testing.B, c *http.Client, url string, body []byte, g *protocol.SessionGrant) int {
	return post(b, c, url, body, func(req *http.Request) error { return protocol.SignSession(req, body, g, time.Now()) })
}

func enrollBody(i int) []byte {
	seal := make([]byte, 32)
	rand.Read(seal)
	body, _ := json.Marshal(protocol.EnrollRequest{MAC: net.HardwareAddr{0x02, 0, 0, 9, byte(i >> 8), byte(i)}.String(), SealKey: seal})
	return body
}

// crossApprove runs n agents, agent i long-polling replica i, approves
// each on the next replica (the same one where there is one), and measures
// approve→bundle per gateway.
func crossApprove(b *testing.B, set *replicaSet, n int) fleetRun {
	defer set.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := b.TempDir()
	r := len(set.fleets)
	done := make([]chan time.Time, n)
	for i := range n {
		done[i] = make(chan time.Time, 1)
		cfg := agentConfig(b, set.fleets[i%r].url, dir, i)
		go func() {
			if _, err := agent.Run(ctx, cfg); err != nil {
				b.Errorf("agent %d: %v", i, err)
			}
			done[i] <- time.Now()
		}()
	}
	ids := waitPending(b, ctx, set.fleets[0].svc, n)
	approved := make(map[string]time.Time, n)
	for i, id := range ids {
		d, err := set.fleets[0].svc.Device(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		// The agent's index is in its MAC's last two octets.
		var hi, lo int
		fmt.Sscanf(d.MAC[len(d.MAC)-5:], "%02x:%02x", &hi, &lo)
		approve(b, set.fleets[(hi<<8|lo+1)%r], id, fmt.Sprintf("gw-%03d", i))
		approved[id] = time.Now()
	}
	return measure(b, ctx, set.fleets[0].svc, dir, approved, done)
}
