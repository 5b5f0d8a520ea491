package protocol_test

import (
	"bytes"
	"regexp"
	"testing"

	"gatehouse/protocol"
)

func TestVerificationCodeIsKeyed(t *testing.T) {
	codeRE := regexp.MustCompile(`^[0-9]{6}$`)
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	fp := protocol.Fingerprint([]byte("a device key"))
	code := protocol.VerificationCode(a, fp)
	if !codeRE.MatchString(code) {
		t.Fatalf("VerificationCode = %q, want 6 digits", code)
	}
	if again := protocol.VerificationCode(bytes.Clone(a), fp); again != code {
		t.Errorf("code not stable: %q then %q", code, again)
	}
	// Another secret gives other codes: over many keys, nearly all differ.
	same := 0
	for i := range 200 {
		fp := protocol.Fingerprint([]byte{byte(i)})
		if protocol.VerificationCode(a, fp) == protocol.VerificationCode(b, fp) {
			same++
		}
	}
	if same > 2 {
		t.Errorf("%d of 200 codes equal under two secrets; the secret must key the code", same)
	}
	// Known answer, so stored codes never silently change meaning.
	if code != "847548" {
		t.Errorf("VerificationCode = %q, want the known answer 847548", code)
	}
}

// Codes must be zero-padded and spread over the whole range.
func TestVerificationCodeSpread(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	firstDigits := map[byte]bool{}
	for i := range 2000 {
		code := protocol.VerificationCode(secret, protocol.Fingerprint([]byte{byte(i), byte(i >> 8)}))
		if len(code) != 6 {
			t.Fatalf("code %q is not 6 characters", code)
		}
		firstDigits[code[0]] = true
	}
	if len(firstDigits) != 10 {
		t.Errorf("codes start with only %d distinct digits", len(firstDigits))
	}
}
