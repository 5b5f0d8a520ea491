// Package webhook delivers gatehouse state-change events to receivers over
// HTTP, signed so a receiver can tell that a delivery came from gatehouse,
// was not altered, and is not a replay of an old one.
//
// One call to [Sender.Send] is one delivery attempt. Durable retries belong to
// the caller's job queue: a failed attempt returns a [*DeliveryError] saying
// whether another attempt may succeed and how long the receiver asked us to
// wait. Every attempt is signed afresh, so a retry carries a new timestamp and
// signature but the same event id.
//
// # The request
//
// A delivery is a POST whose body is the JSON-encoded [Event], with these
// headers:
//
//	Content-Type:          application/json
//	User-Agent:            gatehouse-webhook
//	X-Gatehouse-Event:     device.state_changed
//	X-Gatehouse-Delivery:  <event id, the same on every retry>
//	X-Gatehouse-Timestamp: <unix seconds when this attempt was signed>
//	X-Gatehouse-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// The receiver should answer 2xx within ten seconds and do slow work
// afterwards; anything else counts as a failed attempt and is retried.
//
// # Verifying a delivery
//
// The receiver holds the same secret as gatehouse. For every request it:
//
//  1. Reads the raw body bytes before parsing them. Decoding and re-encoding
//     the JSON changes the bytes and breaks the signature.
//  2. Builds the signed message: the X-Gatehouse-Timestamp value exactly as
//     received, a period, then the body.
//  3. Computes HMAC-SHA256 of that message keyed with the secret (the bytes
//     of the secret as configured, not hex- or base64-decoded), encodes it as
//     lower-case hex and puts "sha256=" in front.
//  4. Compares the result with X-Gatehouse-Signature in constant time
//     (Go's hmac.Equal, Python's hmac.compare_digest, Node's
//     crypto.timingSafeEqual); a plain string compare leaks how many leading
//     characters matched.
//  5. Rejects the request if the timestamp is more than five minutes away
//     from its own clock, in either direction. The timestamp is part of the
//     signed message, so a captured delivery cannot be replayed later.
//  6. Treats X-Gatehouse-Delivery as an idempotency key: delivery is at
//     least once, and a retry after a lost 2xx resends the same event.
//
// [Verify] is the reference implementation of these steps: a delivery is
// correct exactly when Verify accepts it. A Go receiver that does not import
// this package can use:
//
//	func verified(secret []byte, h http.Header, body []byte) bool {
//		ts := h.Get("X-Gatehouse-Timestamp")
//		sec, err := strconv.ParseInt(ts, 10, 64)
//		if err != nil {
//			return false
//		}
//		if age := time.Since(time.Unix(sec, 0)); age > 5*time.Minute || age < -5*time.Minute {
//			return false
//		}
//		m := hmac.New(sha256.New, secret)
//		m.Write([]byte(ts + "." + string(body)))
//		want := "sha256=" + hex.EncodeToString(m.Sum(nil))
//		return hmac.Equal([]byte(want), []byte(h.Get("X-Gatehouse-Signature")))
//	}
//
// From a shell, with the timestamp header, the body and the secret in
// variables, this prints the hex digest after "= "; put "sha256=" in front and
// compare it with the signature header:
//
//	printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret"
//
// Command substitution strips trailing newlines; gatehouse bodies never end
// in one, so body=$(cat body.json) is safe for a body saved unchanged.
package webhook
