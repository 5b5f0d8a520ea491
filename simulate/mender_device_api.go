package simulate

import (
	"io"
	"net/http"
)

// authRequest serves POST /api/devices/v1/authentication/auth_requests
// (deviceauth's SubmitAuthRequestHandler). It needs no management
// credentials: the device proves itself with X-MEN-Signature over the raw
// body, which is why the body is read whole and verified as sent. The JWT
// comes back as the raw body, Content-Type application/jwt.
func (a *menderAPI) authRequest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeMenderError(w, r, http.StatusBadRequest, "failed to decode auth request: "+err.Error())
		return
	}
	token, err := a.m.authRequest(body, r.Header.Get("X-MEN-Signature"))
	if err != nil {
		writeMenderErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/jwt")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, token)
}
