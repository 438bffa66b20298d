package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

var (
	reNotLabel   = regexp.MustCompile(`[^a-z0-9-]+`)
	reDashes     = regexp.MustCompile(`-{2,}`)
	reNotKeyChar = regexp.MustCompile(`[^-._a-zA-Z0-9]+`)
)

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:8]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimRight(s[:n], "-.")
}

// dns1123Label makes s a valid DNS-1123 label (lowercase alphanumerics and '-', ≤ 63). Names that
// had to change keep a short hash of the original so that different names stay different.
func dns1123Label(s, fallback string) string {
	if len(validation.IsDNS1123Label(s)) == 0 {
		return s
	}
	out := reNotLabel.ReplaceAllString(strings.ToLower(s), "-")
	out = strings.Trim(reDashes.ReplaceAllString(out, "-"), "-")
	if out == "" {
		out = fallback
	}
	return truncate(out, 63)
}

// dns1035Label makes s a valid DNS-1035 label (a Service name): like dns1123Label, and starting
// with a letter.
func dns1035Label(s string) string {
	if len(validation.IsDNS1035Label(s)) == 0 {
		return s
	}
	out := reNotLabel.ReplaceAllString(strings.ToLower(s), "-")
	out = strings.Trim(reDashes.ReplaceAllString(out, "-"), "-")
	if out == "" || out[0] < 'a' || out[0] > 'z' {
		out = "s-" + out
	}
	return strings.TrimRight(truncate(out, 63), "-")
}

// uniqueName returns base, or base with a numeric suffix, that is not in taken.
func uniqueName(base string, taken func(string) bool) string {
	if !taken(base) {
		return base
	}
	for i := 2; ; i++ {
		suffix := "-" + strconv.Itoa(i)
		c := truncate(base, 63-len(suffix)) + suffix
		if !taken(c) {
			return c
		}
	}
}

// assignServiceNames gives every compose service its Kubernetes Service name: the compose name
// when it is a valid DNS-1035 label, else a sanitized one that no other service uses.
func (t *translator) assignServiceNames(names []string) {
	used := map[string]bool{}
	for _, n := range names {
		if len(validation.IsDNS1035Label(n)) == 0 {
			t.serviceNames[n] = n
			used[n] = true
		}
	}
	for _, n := range names {
		if _, ok := t.serviceNames[n]; ok {
			continue
		}
		s := uniqueName(dns1035Label(n), func(c string) bool { return used[c] })
		t.serviceNames[n] = s
		used[s] = true
	}
}

// objectName makes a DNS-1123 subdomain-safe object name from a prefix and a compose name, with a
// hash when the name had to change (so that "a_b" and "a-b" do not collide).
func objectName(prefix, name string) string {
	clean := reNotLabel.ReplaceAllString(strings.ToLower(name), "-")
	clean = strings.Trim(reDashes.ReplaceAllString(clean, "-"), "-")
	out := prefix + "-" + clean
	if clean != name || len(out) > 63 {
		out = truncate(out, 54) + "-" + shortHash(name)
	}
	return strings.Trim(reDashes.ReplaceAllString(out, "-"), "-")
}

// dataKey makes a valid ConfigMap/Secret key.
func dataKey(s string) string {
	k := reNotKeyChar.ReplaceAllString(s, "_")
	if k == "" || k == "." || k == ".." {
		k = "_" + k
	}
	return truncate(k, 253)
}

// isPortName reports whether s is a valid IANA_SVC_NAME (a Kubernetes port name).
func isPortName(s string) bool { return len(validation.IsValidPortName(s)) == 0 }
