package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestKillAfterApproveOffUnlessSet(t *testing.T) {
	var stderr bytes.Buffer
	hook, err := killAfterApprove(func(string) string { return "" }, &stderr, func() float64 { return 0 }, func() { t.Fatal("killed") })
	if hook != nil || err != nil || stderr.Len() != 0 {
		t.Fatalf("unset: hook %v, err %v, stderr %q; want no hook and silence", hook != nil, err, stderr.String())
	}
}

func TestKillAfterApproveRefusesBadFractions(t *testing.T) {
	for _, v := range []string{"0", "-0.5", "1.5", "half", "NaN", "Inf"} {
		env := func(k string) string {
			if k == killAfterApproveEnv {
				return v
			}
			return ""
		}
		if hook, err := killAfterApprove(env, &bytes.Buffer{}, func() float64 { return 0 }, func() {}); err == nil || hook != nil {
			t.Errorf("%s=%q: hook %v, err %v; want refused", killAfterApproveEnv, v, hook != nil, err)
		}
	}
	// serve refuses it as bad usage, before it opens anything.
	env := func(k string) string {
		if k == killAfterApproveEnv {
			return "2"
		}
		return ""
	}
	var stderr bytes.Buffer
	if code := runServe(context.Background(), []string{"--listen", "127.0.0.1:0", "--db", t.TempDir() + "/g.db"}, &bytes.Buffer{}, &stderr, env); code != 2 {
		t.Errorf("serve with %s=2: exit %d, want 2; stderr %s", killAfterApproveEnv, code, stderr.String())
	}
}

func TestKillAfterApproveKillsTheChosenFraction(t *testing.T) {
	env := func(k string) string {
		if k == killAfterApproveEnv {
			return "0.25"
		}
		return ""
	}
	var stderr bytes.Buffer
	draw := 0.0
	kills := 0
	hook, err := killAfterApprove(env, &stderr, func() float64 { return draw }, func() { kills++ })
	if err != nil || hook == nil {
		t.Fatalf("hook %v, err %v", hook != nil, err)
	}
	if !strings.Contains(stderr.String(), "test hook") {
		t.Errorf("no announcement at start: %q", stderr.String())
	}
	stderr.Reset()
	draw = 0.25 // not below the fraction: this approval is answered
	hook("dev-a")
	if kills != 0 || stderr.Len() != 0 {
		t.Fatalf("draw 0.25 of 0.25: %d kills, stderr %q; want none", kills, stderr.String())
	}
	draw = 0.24
	hook("dev-b")
	if kills != 1 {
		t.Fatalf("draw 0.24 of 0.25: %d kills, want 1", kills)
	}
	if want := killAfterApproveLine + "dev-b\n"; stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
}
