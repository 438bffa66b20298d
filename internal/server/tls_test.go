package server

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestPinnedVerification(t *testing.T) {
	now := time.Now()
	ca, err := NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	chainPEM, _, err := ca.Issue([]string{"ergomake-server", "10.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ParseCerts(chainPEM)
	if err != nil || len(chain) != 2 {
		t.Fatalf("chain: %d certificates, %v", len(chain), err)
	}
	if Fingerprint(chain[1]) != Fingerprint(ca.Cert) {
		t.Error("the chain does not end with the CA")
	}
	if err := VerifyPinned(chain, ca.Cert, now); err != nil {
		t.Errorf("pinned to its CA: %v", err)
	}
	if err := VerifyPinned(chain, other.Cert, now); err == nil || !strings.Contains(err.Error(), Fingerprint(other.Cert)) {
		t.Errorf("pinned to another CA: %v", err)
	}
	// A server that presents the right CA certificate beside a leaf another CA signed is refused.
	forgedPEM, _, err := other.Issue([]string{"ergomake-server"}, now)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := ParseCerts(forgedPEM)
	if err := VerifyPinned([]*x509.Certificate{forged[0], ca.Cert}, ca.Cert, now); err == nil {
		t.Error("a leaf of another CA passed")
	}
	if err := VerifyPinned(chain, ca.Cert, now.AddDate(6, 0, 0)); err == nil {
		t.Error("an expired leaf passed")
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	want := "sha256:" + hex
	for _, in := range []string{want, hex, "SHA256:" + strings.ToUpper(hex), " " + want + "\n", "sha256:" + strings.Repeat("ab:", 31) + "ab"} {
		if got, err := NormalizeFingerprint(in); err != nil || got != want {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "sha256:", "sha256:abcd", "md5:" + hex, hex + "00", strings.Repeat("zz", 32)} {
		if _, err := NormalizeFingerprint(in); err == nil {
			t.Errorf("NormalizeFingerprint(%q): no error", in)
		}
	}
}

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://10.0.0.1:30443":   "https://10.0.0.1:30443",
		"10.0.0.1:30443":           "https://10.0.0.1:30443",
		"https://ergomake.corp/":   "https://ergomake.corp",
		"https://ergomake.corp/x/": "https://ergomake.corp/x",
	} {
		u, err := NormalizeURL(in)
		if err != nil || u.String() != want {
			t.Errorf("NormalizeURL(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, in := range []string{"http://10.0.0.1", "https://", "https://h?x=1", "https://u:p@h"} {
		if _, err := NormalizeURL(in); err == nil {
			t.Errorf("NormalizeURL(%q): no error", in)
		}
	}
}
