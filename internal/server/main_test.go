package server

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writePair writes a certificate of ca and its key as the server's files, dated mod.
func writePair(t *testing.T, dir string, ca *CA, mod time.Time) {
	t.Helper()
	chain, key, err := ca.Issue([]string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"tls.crt": chain, "tls.key": key} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
}

// served is the fingerprint of the CA that signed the certificate l serves.
func served(t *testing.T, l *certLoader) string {
	t.Helper()
	c, err := l.get(nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(c.Certificate[len(c.Certificate)-1])
	if err != nil {
		t.Fatal(err)
	}
	return Fingerprint(ca)
}

func TestCertLoaderReloads(t *testing.T) {
	dir := t.TempDir()
	ca1, _ := NewCA(time.Now())
	ca2, _ := NewCA(time.Now())
	l := &certLoader{certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key")}
	if _, err := l.get(nil); err == nil {
		t.Fatal("no files: no error")
	}
	writePair(t, dir, ca1, time.Now().Add(-time.Hour))
	if got := served(t, l); got != Fingerprint(ca1.Cert) {
		t.Fatalf("serving %s, want ca1's", got)
	}
	// A renewed certificate (a Secret update reaching the volume) is served after the check interval.
	writePair(t, dir, ca2, time.Now())
	if got := served(t, l); got != Fingerprint(ca1.Cert) {
		t.Errorf("re-read before the check interval")
	}
	l.checked = time.Now().Add(-time.Minute)
	if got := served(t, l); got != Fingerprint(ca2.Cert) {
		t.Errorf("serving %s after renewal, want ca2's", got)
	}
	// A broken file keeps the last good certificate.
	if err := os.WriteFile(l.keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Chtimes(l.certFile, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
	l.checked = time.Now().Add(-time.Minute)
	if got := served(t, l); got != Fingerprint(ca2.Cert) {
		t.Errorf("serving %s after a broken renewal, want the last good one", got)
	}
}
