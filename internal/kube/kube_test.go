package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestEnvNameAndNamespace(t *testing.T) {
	tests := []struct{ project, env, ns string }{
		{"shop", "shop", "ergomake-shop"},
		{"my_app", "my-app", "ergomake-my-app"},
		{"__", "project", "ergomake-project"},
		{strings.Repeat("a", 70), strings.Repeat("a", 63), "ergomake-" + strings.Repeat("a", 54)},
	}
	for _, tt := range tests {
		if got := EnvName(tt.project); got != tt.env {
			t.Errorf("EnvName(%q) = %q, want %q", tt.project, got, tt.env)
		}
		if got := DefaultNamespace(EnvName(tt.project)); got != tt.ns {
			t.Errorf("DefaultNamespace(%q) = %q, want %q", tt.project, got, tt.ns)
		}
	}
	c := &Client{Namespace: "team", NamespaceExplicit: true}
	if got := c.EnvNamespace("shop"); got != "team" {
		t.Errorf("-n team: %s", got)
	}
	c = &Client{Namespace: "from-context"} // a kubeconfig context's namespace does not count
	if got := c.EnvNamespace("shop"); got != "ergomake-shop" {
		t.Errorf("context namespace: %s", got)
	}
}

func TestExplain(t *testing.T) {
	c := &Client{ClusterName: "prod", ContextName: "prod-admin", Server: "https://10.0.0.1:6443"}
	refused := &url.Error{Op: "Get", URL: "https://10.0.0.1:6443/api", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}}
	gr := schema.GroupResource{Group: "ergomake.dev", Resource: "ergomakeenvs"}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"refused", refused, `cluster "prod" (context "prod-admin", https://10.0.0.1:6443): unreachable: connection refused`},
		{"dns", &url.Error{Op: "Get", URL: "https://k8s.example:6443", Err: &net.DNSError{Name: "k8s.example", Err: "no such host"}},
			`cluster "prod" (context "prod-admin", https://10.0.0.1:6443): unreachable: cannot resolve k8s.example`},
		{"timeout", fmt.Errorf("get: %w", context.DeadlineExceeded), `cluster "prod" (context "prod-admin", https://10.0.0.1:6443): unreachable: timed out`},
		{"tls", errors.New(`Get "https://10.0.0.1:6443": tls: failed to verify certificate: x509: certificate signed by unknown authority`),
			`cluster "prod" (context "prod-admin", https://10.0.0.1:6443): unreachable: TLS: certificate signed by unknown authority`},
		{"401", apierrors.NewUnauthorized("Unauthorized"), `cluster "prod" (context "prod-admin", https://10.0.0.1:6443): credentials refused (401 Unauthorized)`},
		{"403", apierrors.NewForbidden(gr, "x", errors.New("user bob cannot list")),
			`cluster "prod" (context "prod-admin", https://10.0.0.1:6443): permission denied: ergomakeenvs.ergomake.dev "x" is forbidden: user bob cannot list`},
		{"other errors pass", apierrors.NewNotFound(gr, "x"), `ergomakeenvs.ergomake.dev "x" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Explain(tt.err)
			if got.Error() != tt.want {
				t.Errorf("Explain = %q\nwant      %q", got, tt.want)
			}
			if !errors.Is(got, tt.err) && got != tt.err {
				t.Errorf("the cause is lost")
			}
			if c.Explain(got).Error() != got.Error() {
				t.Errorf("explaining twice changes the message")
			}
		})
	}
}
