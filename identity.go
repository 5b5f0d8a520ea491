package gatehouse

import "time"

// PrincipalKind says what kind of credential a request acts with.
type PrincipalKind string

// Principal kinds: a person (local account or single sign-on) or an API
// token (the CLI and automation).
const (
	PrincipalUser  PrincipalKind = "user"
	PrincipalToken PrincipalKind = "token"
)

// Principal is who an operator request acts as, with the role it has now:
// roles are read at every request, so a change or revocation applies at once.
type Principal struct {
	Kind PrincipalKind `json:"kind"`
	ID   string        `json:"id"`
	Name string        `json:"name"`
	Role Role          `json:"role"`
}

// Actor names the principal in logs and the audit trail: "user:alice".
func (p Principal) Actor() string { return string(p.Kind) + ":" + p.Name }

// UserSource says where a user's identity is kept.
type UserSource string

// User sources: a password kept here, or an identity provider (OIDC).
const (
	SourceLocal UserSource = "local"
	SourceOIDC  UserSource = "oidc"
)

// User is an operator who logs in to the web page. Local users have a
// password (only its argon2id hash is stored); OIDC users are made on their
// first single sign-on and take their role from their groups at each login.
type User struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	Source    UserSource `json:"source"`
	CreatedAt time.Time  `json:"created_at"`
	LastLogin *time.Time `json:"last_login,omitempty"`
	Disabled  bool       `json:"disabled"`
}
