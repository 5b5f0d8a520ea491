package protocol

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"gatehouse"
)

// FuzzHeaderFields checks the timestamp and nonce header rules against
// oracles written from their documentation rather than from the code: a
// timestamp is unix seconds in decimal with no sign, padding or leading
// zero, accepted iff within MaxSkew of the clock (computed in big integers,
// so no overflow hides a far one), and parsed to exactly that second; a
// nonce is accepted iff it is 32 lower-case hex digits. Refusals are
// unauthorized and never repeat the header.
func FuzzHeaderFields(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	for _, ts := range []string{"1800000000", "1800000300", "1800000301", "1799999700", "1799999699", "+1800000000",
		"01800000000", "-0", "0", "9223372036854775807", "9223372036854775808", "-9223372036854775808", " 1800000000", "1.8e9"} {
		f.Add(ts, "00112233445566778899aabbccddeeff")
	}
	for _, n := range []string{"00112233445566778899AABBCCDDEEFF", "00112233445566778899aabbccddeef", "00112233445566778899aabbccddeeff0",
		"00112233445566778899aabbccddeeg0", "ｆ0112233445566778899aabbccddeeff"} {
		f.Add("1800000000", n)
	}
	v := &Verifier{Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, ts, nonce string) {
		got, err := v.checkTimestamp(ts)
		sec, want := timestampOracle(ts, now)
		switch {
		case want && err != nil:
			t.Fatalf("checkTimestamp(%q) refused a valid timestamp: %v", ts, err)
		case !want && err == nil:
			t.Fatalf("checkTimestamp(%q) = %v, want a refusal", ts, got)
		case want && !got.Equal(time.Unix(sec, 0)):
			t.Fatalf("checkTimestamp(%q) = %v, want %v", ts, got, time.Unix(sec, 0))
		case err != nil:
			checkRefusal(t, err, ts, got.IsZero())
		}
		err = checkNonce(nonce)
		if want := nonceOracle(nonce); want != (err == nil) {
			t.Fatalf("checkNonce(%q) = %v, want accepted %v", nonce, err, want)
		}
		if err != nil {
			checkRefusal(t, err, nonce, true)
		}
	})
}

func timestampOracle(ts string, now time.Time) (int64, bool) {
	if ts == "" || ts != "0" && (ts[0] == '0' || ts[0] == '-' && (len(ts) == 1 || ts[1] == '0')) {
		return 0, false
	}
	for i, c := range ts {
		if (c < '0' || c > '9') && !(i == 0 && c == '-') {
			return 0, false
		}
	}
	n, ok := new(big.Int).SetString(ts, 10)
	if !ok {
		return 0, false
	}
	d := new(big.Int).Sub(n, big.NewInt(now.Unix()))
	skew := big.NewInt(int64(MaxSkew / time.Second))
	if d.CmpAbs(skew) > 0 {
		return 0, false
	}
	return n.Int64(), true
}

func nonceOracle(n string) bool {
	if len(n) != 32 {
		return false
	}
	return strings.Trim(n, "0123456789abcdef") == ""
}

func checkRefusal(t *testing.T, err error, input string, empty bool) {
	t.Helper()
	if !empty {
		t.Fatalf("refused with %v but returned a time too", err)
	}
	if gatehouse.ErrorCode(err) != gatehouse.EUNAUTHORIZED {
		t.Fatalf("refusal %v is not unauthorized", err)
	}
	if msg := err.Error(); len(input) >= 8 && strings.Contains(msg, input) || len(msg) > 300 {
		t.Fatalf("refusal %q repeats the header %q", msg, input)
	}
}
