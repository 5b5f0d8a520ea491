package provision

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"gatehouse"
)

// argon2id parameters: the OWASP recommendation (19 MiB, 2 passes, 1 lane),
// tens of milliseconds a login on a small server. The PHC string carries
// them, so raising them later keeps old hashes verifiable.
const (
	argonTime    = 2
	argonMemory  = 19 << 10 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Password lengths: 12 characters is the floor for passwords people choose;
// the cap keeps an attacker from making the hash itself expensive.
const (
	minPassword = 12
	maxPassword = 256
)

// hashSlots bounds argon2id hashes in flight: each takes 19 MiB, so a login
// flood queues here instead of exhausting memory.
var hashSlots = make(chan struct{}, 4)

func checkPassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	if n < minPassword || len(pw) > maxPassword {
		return gatehouse.Errorf(gatehouse.EINVALID, "password must be %d to %d characters long", minPassword, maxPassword)
	}
	return nil
}

// hashPassword returns the PHC string of pw: the format other tools read,
// carrying its own parameters so they can be raised later.
func hashPassword(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key, err := argonKey(ctx, pw, salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword reports whether pw matches the PHC string phc. An empty
// phc (no password set) never matches but costs the same, so timing does
// not tell which user names exist.
func verifyPassword(ctx context.Context, phc, pw string) (bool, error) {
	p, err := parsePHC(phc)
	if phc == "" || err != nil {
		p = dummyPHC
	}
	key, err := argonKey(ctx, pw, p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	if err != nil {
		return false, err
	}
	return phc != "" && subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

func argonKey(ctx context.Context, pw string, salt []byte, t, m uint32, p uint8, n uint32) ([]byte, error) {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("provision: waiting to hash a password: %w", ctx.Err())
	}
	defer func() { <-hashSlots }()
	return argon2.IDKey([]byte(pw), salt, t, m, p, n), nil
}

type phcParams struct {
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

var dummyPHC = phcParams{time: argonTime, memory: argonMemory, threads: argonThreads,
	salt: make([]byte, argonSaltLen), key: make([]byte, argonKeyLen)}

var errPHC = errors.New("provision: not an argon2id PHC string")

func parsePHC(s string) (phcParams, error) {
	var p phcParams
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, errPHC
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, errPHC
	}
	// Bounds keep a tampered row from turning one login into a huge hash.
	if p.memory < 8<<10 || p.memory > 1<<20 || p.time < 1 || p.time > 10 || p.threads < 1 {
		return p, errPHC
	}
	var err1, err2 error
	p.salt, err1 = base64.RawStdEncoding.DecodeString(parts[4])
	p.key, err2 = base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(p.salt) < 8 || len(p.key) < 16 || len(p.key) > 64 {
		return p, errPHC
	}
	return p, nil
}
