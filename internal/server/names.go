package server

import (
	"crypto/sha256"
	"encoding/base32"
	"regexp"
	"strings"

	"github.com/ergomake/ergomake/internal/kube"
)

var (
	reNotAlnum = regexp.MustCompile(`[^a-z0-9]+`)
	b32        = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
)

const (
	nsPrefix  = "ergomake-"
	hashLen   = 8
	maxLabel  = 63
	maxUserNS = 24 // characters of the user kept in a hashed name when the project needs the rest
)

// Namespace is the namespace of user's environment of a compose project:
// ergomake-<user>-<project>, a valid DNS label.
//
// The plain form is used only when it is unambiguous: the user name is lower-case letters and
// digits (no dash, so the name splits one way only), the project is already a DNS label
// (kube.EnvName) and the whole fits in 63 characters. Any other user or project gets its sanitized,
// truncated parts followed by 8 characters of a hash of the exact (user, project), so "Alice" and
// "alice", or "a-b"/"c" and "a"/"b-c", never share a namespace. The namespace also records its user
// (an annotation the server checks before acting), so even a crafted collision exposes nothing.
func Namespace(user, project string) string {
	env := kube.EnvName(project)
	u := reNotAlnum.ReplaceAllString(strings.ToLower(user), "-")
	u = strings.Trim(u, "-")
	plain := nsPrefix + u + "-" + env
	if u == user && !strings.Contains(u, "-") && u != "" && env == project && len(plain) <= maxLabel {
		return plain
	}
	sum := sha256.Sum256([]byte(user + "\x00" + project))
	h := b32.EncodeToString(sum[:])[:hashLen]
	budget := maxLabel - len(nsPrefix) - hashLen - 2 // two dashes: user-project-hash
	if u == "" {
		u = "u"
	}
	if len(u)+len(env)+1 > budget {
		keepUser := min(len(u), max(maxUserNS, budget-1-len(env)))
		u = strings.TrimRight(u[:keepUser], "-")
		env = strings.TrimRight(env[:min(len(env), budget-1-len(u))], "-")
	}
	if env == "" {
		return nsPrefix + u + "-" + h
	}
	return nsPrefix + u + "-" + env + "-" + h
}
