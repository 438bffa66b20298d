package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// TLSSecretName is the kubernetes.io/tls Secret install generates when the admin brings no
// certificate: tls.crt is the chain (leaf, then the CA), ca.crt the CA. The CA's key is used once
// to sign the leaf and never stored: renewing means a new CA (and a new fingerprint to log in
// with).
const (
	TLSSecretName = "ergomake-server-tls"
	// ServiceName is the server's Service (and Deployment) name.
	ServiceName = "ergomake-server"
)

// Fingerprint is a certificate's pin as `ergomake login --ca-fingerprint` takes it: "sha256:" and
// the hex SHA-256 of its SubjectPublicKeyInfo (as kubeadm's --discovery-token-ca-cert-hash).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// NormalizeFingerprint accepts "sha256:HEX" or bare HEX (any case, colons allowed between bytes)
// and returns the canonical "sha256:hex".
func NormalizeFingerprint(s string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	v = strings.TrimPrefix(v, "sha256:")
	v = strings.ReplaceAll(v, ":", "")
	if b, err := hex.DecodeString(v); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("CA fingerprint %q: want sha256: followed by 64 hex digits (as `ergomake install --server` prints)", s)
	}
	return "sha256:" + v, nil
}

// CA is a certificate authority: a certificate and its key.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewCA makes a self-signed CA valid for ten years from now.
func NewCA(now time.Time) (*CA, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "ergomake server CA", Organization: []string{"ergomake"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: keyPEM}, nil
}

// ParseCert reads the first certificate of a PEM bundle.
func ParseCert(certPEM []byte) (*x509.Certificate, error) {
	certs, err := ParseCerts(certPEM)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// ParseCerts reads every certificate of a PEM bundle.
func ParseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate in PEM data")
	}
	return out, nil
}

// ServingHosts are the names and addresses the generated serving certificate carries: the
// Service's names in namespace, localhost and the loopback addresses. (Clients that pinned the CA
// do not check the host name: the CA signs nothing but this server's certificates.)
func ServingHosts(namespace string) []string {
	return []string{
		ServiceName, ServiceName + "." + namespace, ServiceName + "." + namespace + ".svc",
		ServiceName + "." + namespace + ".svc.cluster.local", "localhost", "127.0.0.1", "::1",
	}
}

// Issue makes a serving certificate for hosts (DNS names or IP addresses) valid for five years
// (the CA's key is not kept to renew it sooner); it
// returns the chain PEM (leaf, then the CA) and the key PEM.
func (ca *CA) Issue(hosts []string, now time.Time) (chainPEM, keyPEM []byte, err error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: ServiceName, Organization: []string{"ergomake"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, err
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.CertPEM...)
	return chain, keyPEM, nil
}

// VerifyPinned checks a presented chain against a pinned CA: the leaf must be a server
// certificate that the CA signed (directly or through the presented intermediates) and that is
// valid at now. Host names are not checked (see ServingHosts).
func VerifyPinned(chain []*x509.Certificate, ca *x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("the server presented no certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("the server's certificate is not signed by the CA you trusted (%s): %w", Fingerprint(ca), err)
	}
	return nil
}

// PinnedTLSConfig is the client TLS configuration that trusts exactly ca (see VerifyPinned).
func PinnedTLSConfig(ca *x509.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by VerifyConnection: the pinned CA, no host name check
		VerifyConnection: func(cs tls.ConnectionState) error {
			// A resumed session is one this client's own session cache kept from a handshake
			// that passed this check: only the leaf's expiry needs a look (an ECDSA
			// verification less per new connection of the dial routes).
			if cs.DidResume && len(cs.PeerCertificates) > 0 && time.Now().Before(cs.PeerCertificates[0].NotAfter) {
				return nil
			}
			return VerifyPinned(cs.PeerCertificates, ca, time.Now())
		},
	}
}
