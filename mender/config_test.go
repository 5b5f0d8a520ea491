package mender

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		cfg  Config
		want string // in the error; "" means valid
	}{
		"Token":          {Config{URL: "https://hosted.mender.io", Token: "t"}, ""},
		"Login":          {Config{URL: "http://mender.local:8080/", User: "u", Password: "p"}, ""},
		"NoURL":          {Config{Token: "t"}, "URL is required"},
		"FTP":            {Config{URL: "ftp://mender", Token: "t"}, "http:// or https://"},
		"NoHost":         {Config{URL: "hosted.mender.io", Token: "t"}, "http:// or https://"},
		"URLCredentials": {Config{URL: "https://u:hunter2@hosted.mender.io", Token: "t"}, "must not carry credentials"},
		"Garbage":        {Config{URL: "https://a b\x7f:hunter2@x", Token: "t"}, "does not parse"},
		"NoCredentials":  {Config{URL: "https://hosted.mender.io"}, "credentials are required"},
		"Both":           {Config{URL: "https://hosted.mender.io", Token: "hunter2", User: "u", Password: "p"}, "not both"},
		"UserOnly":       {Config{URL: "https://hosted.mender.io", User: "u"}, "set together"},
		"PasswordOnly":   {Config{URL: "https://hosted.mender.io", Password: "hunter2"}, "set together"},
		"NegativeLimits": {Config{URL: "https://hosted.mender.io", Token: "t", Timeout: -1, RateLimit: -1}, "Timeout must not be negative; RateLimit"},
		"Several":        {Config{}, "URL is required (e.g. https://hosted.mender.io); credentials are required"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := New(tt.cfg); err != nil {
					t.Fatalf("New() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "mender: ") {
				t.Fatalf("Validate() = %v, want a mender error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows a secret", err)
			}
			if _, err := New(tt.cfg); err == nil {
				t.Error("New accepted an invalid config")
			}
		})
	}
}
