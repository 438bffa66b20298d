package server

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newStore(t *testing.T) (*TokenStore, *fake.Clientset, *clock) {
	t.Helper()
	cs := fake.NewClientset()
	clk := &clock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	return &TokenStore{Client: cs, Namespace: "ergomake-system", Now: clk.now}, cs, clk
}

func TestTokenStoredOnlyHashed(t *testing.T) {
	s, cs, _ := newStore(t)
	ctx := context.Background()
	tok, info, err := s.Create(ctx, "alice@example.com", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) < len(TokenPrefix)+40 {
		t.Fatalf("token %q: want %s and at least 40 random characters", tok, TokenPrefix)
	}
	if info.ID != TokenID(tok) || info.User != "alice@example.com" {
		t.Errorf("info = %+v", info)
	}
	list, err := cs.CoreV1().Secrets("ergomake-system").List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("secrets: %v %v", list, err)
	}
	sec := list.Items[0]
	for k, v := range sec.Data {
		if strings.Contains(string(v), tok) || strings.Contains(string(v), strings.TrimPrefix(tok, TokenPrefix)) {
			t.Errorf("Secret key %s holds the token", k)
		}
	}
	if string(sec.Data["sha256"]) != HashToken(tok) {
		t.Errorf("stored hash %q, want %q", sec.Data["sha256"], HashToken(tok))
	}
	if sec.Name != "ergomake-token-"+info.ID || sec.Labels[LabelToken] != "true" || sec.Labels[LabelUser] != UserHash("alice@example.com") {
		t.Errorf("Secret %s labels %v", sec.Name, sec.Labels)
	}
	// Two tokens are never the same.
	tok2, _, err := s.Create(ctx, "alice@example.com", 0)
	if err != nil || tok2 == tok {
		t.Fatalf("second token %q (%v)", tok2, err)
	}
}

func TestAuthenticate(t *testing.T) {
	s, _, clk := newStore(t)
	ctx := context.Background()
	tok, info, err := s.Create(ctx, "bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	never, _, err := s.Create(ctx, "carol", 0)
	if err != nil {
		t.Fatal(err)
	}

	id, err := s.Authenticate(ctx, tok)
	if err != nil || id.User != "bob" || id.TokenID != info.ID || id.Expires == nil {
		t.Fatalf("Authenticate = %+v, %v", id, err)
	}
	for _, tc := range []struct {
		token string
		want  error
	}{
		{"", ErrNoToken},
		{"nope", ErrUnknownToken},
		{TokenPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ErrUnknownToken},
		{tok + "x", ErrUnknownToken},
	} {
		if _, err := s.Authenticate(ctx, tc.token); !errors.Is(err, tc.want) {
			t.Errorf("Authenticate(%q) = %v, want %v", tc.token, err, tc.want)
		}
	}

	// Expiry: valid until the instant it expires.
	clk.advance(time.Hour - time.Second)
	if _, err := s.Authenticate(ctx, tok); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
	clk.advance(time.Second)
	if _, err := s.Authenticate(ctx, tok); !errors.Is(err, ErrExpired) {
		t.Errorf("at expiry: %v, want ErrExpired", err)
	}
	clk.advance(1000 * time.Hour)
	if _, err := s.Authenticate(ctx, never); err != nil {
		t.Errorf("a token without expiry: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	s, _, clk := newStore(t)
	s.CacheTTL = 5 * time.Second
	ctx := context.Background()
	tok, info, err := s.Create(ctx, "dave", 0)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := s.Create(ctx, "dave", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, tok); err != nil {
		t.Fatal(err)
	}

	// Another replica (another store on the same Secrets, with its own cache) revokes it.
	admin := &TokenStore{Client: s.Client, Namespace: s.Namespace, Now: clk.now}
	got, err := admin.Revoke(ctx, info.ID)
	if err != nil || got.State(clk.now()) != "revoked" {
		t.Fatalf("Revoke = %+v, %v", got, err)
	}
	// This replica's cache may serve it until CacheTTL passes, never longer.
	clk.advance(5 * time.Second)
	if _, err := s.Authenticate(ctx, tok); !errors.Is(err, ErrRevoked) {
		t.Errorf("after revocation and the cache TTL: %v, want ErrRevoked", err)
	}
	if _, err := s.Authenticate(ctx, other); err != nil {
		t.Errorf("the user's other token: %v", err)
	}
	// Revoking again is fine; bad IDs are named.
	if _, err := admin.Revoke(ctx, info.ID); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	for _, id := range []string{"", "xyz", "0123456789ab", "ergomake-token-0123456789ab"} {
		if _, err := admin.Revoke(ctx, id); err == nil {
			t.Errorf("Revoke(%q): no error", id)
		}
	}
	// The revoking store forgets at once.
	if _, err := admin.Authenticate(ctx, tok); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoking store: %v", err)
	}

	list, err := admin.List(ctx, "dave")
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v", list, err)
	}
	states := map[string]string{}
	for _, l := range list {
		states[l.ID] = l.State(clk.now())
	}
	if states[info.ID] != "revoked" || states[TokenID(other)] != "active" {
		t.Errorf("states %v", states)
	}
	if l, _ := admin.List(ctx, "erin"); len(l) != 0 {
		t.Errorf("List(erin) = %+v", l)
	}
}

func TestValidateUser(t *testing.T) {
	for _, u := range []string{"alice", "Alice.Smith", "a@b.c", "x_y+z-1", strings.Repeat("a", MaxUserLen)} {
		if err := ValidateUser(u); err != nil {
			t.Errorf("ValidateUser(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"", "-a", "a b", "a/b", "é", strings.Repeat("a", MaxUserLen+1), "a\n"} {
		if err := ValidateUser(u); err == nil {
			t.Errorf("ValidateUser(%q): no error", u)
		}
	}
	s, _, _ := newStore(t)
	if _, _, err := s.Create(context.Background(), "a b", time.Hour); err == nil {
		t.Error("Create with a bad user name: no error")
	}
	if _, _, err := s.Create(context.Background(), "ok", -time.Hour); err == nil {
		t.Error("Create with a negative ttl: no error")
	}
}
