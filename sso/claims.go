package sso

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// claims are a token's or userinfo answer's claims, each kept raw until
// read, since providers differ in the shapes they send.
type claims map[string]json.RawMessage

// str is a string claim, or "" when it is absent or not a string.
func (c claims) str(name string) string {
	var s string
	if raw, ok := c[name]; ok && json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	return ""
}

// displayName is how the person is shown in gatehouse: their user name at
// the provider, else their e-mail, else their name.
func (c claims) displayName() string {
	for _, k := range []string{"preferred_username", "email", "name"} {
		if v := c.str(k); v != "" {
			return v
		}
	}
	return ""
}

// groups reads the groups claim: a JSON array of strings, a single string,
// or an object whose keys are the groups (as ZITADEL sends project roles).
// ok is false when the claim is absent or null.
func (c claims) groups(name string) (groups []string, ok bool, err error) {
	raw, present := c[name]
	if !present || string(raw) == "null" {
		return nil, false, nil
	}
	var list []string
	var one string
	var set map[string]json.RawMessage
	switch {
	case json.Unmarshal(raw, &list) == nil:
	case json.Unmarshal(raw, &one) == nil:
		list = []string{one}
	case json.Unmarshal(raw, &set) == nil:
		for k := range set {
			list = append(list, k)
		}
		slices.Sort(list)
	default:
		return nil, true, fmt.Errorf("the %q claim is not a list of group names", name)
	}
	return slices.DeleteFunc(list, func(g string) bool { return g == "" }), true, nil
}
