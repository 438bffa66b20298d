package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Tokens are stored one Secret per token in the server's namespace. The Secret holds the token's
// SHA-256 hash, never the token: a token is 32 random bytes, so a plain hash is as strong as a
// slow one and lets the server find the Secret by name without listing.
const (
	// TokenPrefix starts every token, so that one found in a log or a file is recognisable.
	TokenPrefix = "ergomake_"
	// TokenSecretPrefix starts the name of every token's Secret; the token's ID follows.
	TokenSecretPrefix = "ergomake-token-"
	// TokenSecretType is the type of the token Secrets.
	TokenSecretType corev1.SecretType = "ergomake.dev/server-token"
	// LabelToken marks token Secrets (value "true").
	LabelToken = "ergomake.dev/server-token"
	// LabelUser carries UserHash of a user on its token Secrets and its namespaces.
	LabelUser = "ergomake.dev/server-user"

	keyHash    = "sha256"
	keyUser    = "user"
	keyCreated = "created"
	keyExpires = "expires"
	keyRevoked = "revoked"

	tokenRandomBytes = 32
	idLen            = 12 // hex digits of the hash that name the token
)

// Errors of Authenticate: each is a 401 whose message the CLI shows as it is.
var (
	ErrNoToken      = errors.New("no token: log in with `ergomake login URL --token TOKEN`")
	ErrUnknownToken = errors.New("unknown token: log in again with a valid token (`ergomake login`)")
	ErrRevoked      = errors.New("token revoked: log in again with a new token (`ergomake login`)")
	ErrExpired      = errors.New("token expired: log in again with a new token (`ergomake login`)")
)

var reUser = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]*$`)

// MaxUserLen bounds user names.
const MaxUserLen = 128

// ValidateUser checks a user name: letters, digits and . _ @ + - (an e-mail address is fine),
// starting with a letter or digit, at most MaxUserLen characters.
func ValidateUser(user string) error {
	if user == "" {
		return errors.New("user name is empty")
	}
	if len(user) > MaxUserLen {
		return fmt.Errorf("user name %q is longer than %d characters", user, MaxUserLen)
	}
	if !reUser.MatchString(user) {
		return fmt.Errorf("user name %q: use letters, digits and . _ @ + - only, starting with a letter or digit", user)
	}
	return nil
}

// HashToken is the hex SHA-256 of a token, as stored.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenID is the short public name of a token (the first hex digits of its hash): what `token ls`
// shows and `token revoke` takes.
func TokenID(token string) string { return HashToken(token)[:idLen] }

// UserHash is the label value that stands for a user (names may hold characters labels cannot).
func UserHash(user string) string {
	sum := sha256.Sum256([]byte(user))
	return hex.EncodeToString(sum[:])[:40]
}

// NewToken returns a fresh random token.
func NewToken() (string, error) {
	b := make([]byte, tokenRandomBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// TokenInfo is what is known of a stored token (never the token itself).
type TokenInfo struct {
	ID      string     `json:"id"`
	User    string     `json:"user"`
	Created time.Time  `json:"created"`
	Expires *time.Time `json:"expires,omitempty"`
	Revoked *time.Time `json:"revoked,omitempty"`
}

// State is "active", "expired" or "revoked" at now.
func (t TokenInfo) State(now time.Time) string {
	switch {
	case t.Revoked != nil:
		return "revoked"
	case t.Expires != nil && !now.Before(*t.Expires):
		return "expired"
	}
	return "active"
}

// Identity is an authenticated caller.
type Identity struct {
	User    string
	TokenID string
	Expires *time.Time
}

// TokenStore keeps tokens as Secrets in Namespace.
type TokenStore struct {
	Client    kubernetes.Interface
	Namespace string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// CacheTTL is how long a successful lookup is reused before the Secret is read again: the
	// longest a revocation takes to be seen by a replica (0: no cache).
	CacheTTL time.Duration

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	id   Identity
	info TokenInfo
	at   time.Time
}

func (s *TokenStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func secretName(id string) string { return TokenSecretPrefix + id }

// Create makes a token for user, valid for ttl (0: no expiry), and returns it with its record.
// The token is returned once and stored only as its hash.
func (s *TokenStore) Create(ctx context.Context, user string, ttl time.Duration) (string, TokenInfo, error) {
	if err := ValidateUser(user); err != nil {
		return "", TokenInfo{}, err
	}
	if ttl < 0 {
		return "", TokenInfo{}, fmt.Errorf("ttl %s is negative", ttl)
	}
	now := s.now().UTC().Truncate(time.Second)
	for attempt := 0; ; attempt++ {
		token, err := NewToken()
		if err != nil {
			return "", TokenInfo{}, err
		}
		hash := HashToken(token)
		info := TokenInfo{ID: hash[:idLen], User: user, Created: now}
		data := map[string][]byte{
			keyHash:    []byte(hash),
			keyUser:    []byte(user),
			keyCreated: []byte(now.Format(time.RFC3339)),
		}
		if ttl > 0 {
			exp := now.Add(ttl)
			info.Expires = &exp
			data[keyExpires] = []byte(exp.Format(time.RFC3339))
		}
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:      secretName(info.ID),
				Namespace: s.Namespace,
				Labels: map[string]string{
					v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue,
					LabelToken:              "true",
					LabelUser:               UserHash(user),
				},
			},
			Type: TokenSecretType,
			Data: data,
		}
		_, err = s.Client.CoreV1().Secrets(s.Namespace).Create(ctx, sec, metav1.CreateOptions{FieldManager: "ergomake"})
		if apierrors.IsAlreadyExists(err) && attempt < 3 {
			continue // 48-bit ID prefix taken: draw again
		}
		if err != nil {
			return "", TokenInfo{}, fmt.Errorf("storing the token (Secret %s/%s): %w", s.Namespace, sec.Name, err)
		}
		return token, info, nil
	}
}

func infoFromSecret(sec *corev1.Secret) (TokenInfo, error) {
	id := strings.TrimPrefix(sec.Name, TokenSecretPrefix)
	info := TokenInfo{ID: id, User: string(sec.Data[keyUser])}
	parse := func(key string) (*time.Time, error) {
		v := string(sec.Data[key])
		if v == "" {
			return nil, nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, fmt.Errorf("token Secret %s: %s %q: %w", sec.Name, key, v, err)
		}
		return &t, nil
	}
	c, err := parse(keyCreated)
	if err != nil {
		return info, err
	}
	if c != nil {
		info.Created = *c
	}
	if info.Expires, err = parse(keyExpires); err != nil {
		return info, err
	}
	if info.Revoked, err = parse(keyRevoked); err != nil {
		return info, err
	}
	return info, nil
}

// List returns every stored token, of user only when user is not empty, oldest first.
func (s *TokenStore) List(ctx context.Context, user string) ([]TokenInfo, error) {
	sel := LabelToken + "=true"
	if user != "" {
		sel += "," + LabelUser + "=" + UserHash(user)
	}
	list, err := s.Client.CoreV1().Secrets(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing tokens (Secrets in %s): %w", s.Namespace, err)
	}
	var out []TokenInfo
	for i := range list.Items {
		info, err := infoFromSecret(&list.Items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Revoke marks the token with this ID revoked (the record stays, so that the server can say why it
// refuses it). Revoking a revoked token is not an error.
func (s *TokenStore) Revoke(ctx context.Context, id string) (TokenInfo, error) {
	id = strings.TrimPrefix(id, TokenSecretPrefix)
	if len(id) != idLen || strings.Trim(id, "0123456789abcdef") != "" {
		return TokenInfo{}, fmt.Errorf("%q is not a token ID (%d hex digits, as `ergomake server token ls` shows)", id, idLen)
	}
	secrets := s.Client.CoreV1().Secrets(s.Namespace)
	sec, err := secrets.Get(ctx, secretName(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) || (err == nil && sec.Labels[LabelToken] != "true") {
		return TokenInfo{}, fmt.Errorf("no token with ID %s", id)
	}
	if err != nil {
		return TokenInfo{}, fmt.Errorf("reading token %s: %w", id, err)
	}
	if len(sec.Data[keyRevoked]) == 0 {
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		sec.Data[keyRevoked] = []byte(s.now().UTC().Format(time.RFC3339))
		if sec, err = secrets.Update(ctx, sec, metav1.UpdateOptions{FieldManager: "ergomake"}); err != nil {
			return TokenInfo{}, fmt.Errorf("revoking token %s: %w", id, err)
		}
	}
	s.forget(id)
	return infoFromSecret(sec)
}

func (s *TokenStore) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, c := range s.cache {
		if c.id.TokenID == id {
			delete(s.cache, k)
		}
	}
}

// Authenticate finds who a token belongs to: ErrNoToken, ErrUnknownToken, ErrRevoked or ErrExpired
// when it is refused, another error when the store cannot be read.
func (s *TokenStore) Authenticate(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, ErrNoToken
	}
	if !strings.HasPrefix(token, TokenPrefix) || len(token) > 200 {
		return Identity{}, ErrUnknownToken
	}
	hash := HashToken(token)
	now := s.now()
	if s.CacheTTL > 0 {
		s.mu.Lock()
		c, ok := s.cache[hash]
		s.mu.Unlock()
		if ok && now.Sub(c.at) < s.CacheTTL {
			return s.check(c.info, c.id, now)
		}
	}
	sec, err := s.Client.CoreV1().Secrets(s.Namespace).Get(ctx, secretName(hash[:idLen]), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Identity{}, ErrUnknownToken
	}
	if err != nil {
		return Identity{}, fmt.Errorf("reading the token store: %w", err)
	}
	if sec.Labels[LabelToken] != "true" || subtle.ConstantTimeCompare(sec.Data[keyHash], []byte(hash)) != 1 {
		return Identity{}, ErrUnknownToken
	}
	info, err := infoFromSecret(sec)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{User: info.User, TokenID: info.ID, Expires: info.Expires}
	if s.CacheTTL > 0 {
		s.mu.Lock()
		if s.cache == nil || len(s.cache) > 10000 {
			s.cache = map[string]cached{}
		}
		s.cache[hash] = cached{id: id, info: info, at: now}
		s.mu.Unlock()
	}
	return s.check(info, id, now)
}

func (s *TokenStore) check(info TokenInfo, id Identity, now time.Time) (Identity, error) {
	switch info.State(now) {
	case "revoked":
		return Identity{}, ErrRevoked
	case "expired":
		return Identity{}, ErrExpired
	}
	if ValidateUser(info.User) != nil {
		return Identity{}, ErrUnknownToken
	}
	return id, nil
}
