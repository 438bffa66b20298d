// Package kube holds the CLI's Kubernetes plumbing: clients built from a kubeconfig the way kubectl
// builds them, the ErgomakeEnv and the objects it references applied with server-side apply, the
// environment's namespace, and deletion that waits until everything is gone.
package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// FieldManager is the server-side apply field manager of everything the CLI applies.
const FieldManager = "ergomake"

// Options select the cluster, with kubectl's semantics: Kubeconfig names the file (else $KUBECONFIG,
// else ~/.kube/config), Context overrides the current context, Namespace overrides the namespace.
type Options struct {
	Kubeconfig string
	Context    string
	Namespace  string
}

// Client talks to one cluster.
type Client struct {
	// Config is the REST configuration (for port-forwarding).
	Config *rest.Config
	// Kube is the typed clientset.
	Kube kubernetes.Interface
	// Dynamic reaches ErgomakeEnvs.
	Dynamic dynamic.Interface

	// ContextName, ClusterName and Server say which cluster this is, for error messages.
	ContextName string
	ClusterName string
	Server      string
	// Namespace is the namespace from -n, or else the kubeconfig context's namespace ("" if none).
	Namespace string
	// NamespaceExplicit is true when -n named it.
	NamespaceExplicit bool
}

// New builds a client from the kubeconfig. It does not contact the cluster: see Check.
func New(opts Options) (*Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if opts.Kubeconfig != "" {
		rules.ExplicitPath = opts.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: opts.Context}
	if opts.Namespace != "" {
		overrides.Context.Namespace = opts.Namespace
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)

	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig: %w", err)
	}
	ctxName := opts.Context
	if ctxName == "" {
		ctxName = raw.CurrentContext
	}
	c := &Client{ContextName: ctxName}
	if kctx, ok := raw.Contexts[ctxName]; ok {
		c.ClusterName = kctx.Cluster
	}

	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no Kubernetes cluster configured: set KUBECONFIG, pass --kubeconfig, or create ~/.kube/config")
		}
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if ns == "default" && opts.Namespace == "" {
		// clientcmd falls back to "default"; only a namespace the user chose counts.
		if kctx, ok := raw.Contexts[ctxName]; !ok || kctx.Namespace == "" {
			ns = ""
		}
	}
	c.Namespace = ns
	c.NamespaceExplicit = opts.Namespace != ""
	c.Server = cfg.Host
	cfg.UserAgent = "ergomake"
	// The defaults (5 QPS) make deleting or listing many objects crawl.
	cfg.QPS = 50
	cfg.Burst = 100
	c.Config = cfg

	if c.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	return c, nil
}

// String names the cluster for messages: `cluster "x" (context "y", https://...)`.
func (c *Client) String() string {
	name := c.ClusterName
	if name == "" {
		name = c.Server
	}
	var extra []string
	if c.ContextName != "" {
		extra = append(extra, fmt.Sprintf("context %q", c.ContextName))
	}
	if c.Server != "" && c.Server != name {
		extra = append(extra, c.Server)
	}
	if len(extra) == 0 {
		return fmt.Sprintf("cluster %q", name)
	}
	return fmt.Sprintf("cluster %q (%s)", name, strings.Join(extra, ", "))
}

// ErrCRDMissing is returned by Check when the ErgomakeEnv CRD is not installed.
var ErrCRDMissing = errors.New("ErgomakeEnv CRD not installed")

// Check contacts the cluster and makes sure the ErgomakeEnv API is served. Its errors are one
// line naming the cluster and why: unreachable, credentials refused, forbidden, CRD missing.
func (c *Client) Check(ctx context.Context) error {
	return c.checkAPI(ctx, v1alpha1.GroupVersion.String())
}

func (c *Client) checkAPI(ctx context.Context, groupVersion string) error {
	_, err := c.Kube.Discovery().ServerResourcesForGroupVersion(groupVersion)
	if err == nil {
		return nil
	}
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w on %s: run `ergomake install`", ErrCRDMissing, c)
	}
	return c.Explain(err)
}

// Explain turns a client error into one line naming the cluster and why it failed. Errors that are
// not about reaching the cluster are returned unchanged.
func (c *Client) Explain(err error) error {
	if err == nil {
		return nil
	}
	var ce *ClusterError
	if errors.As(err, &ce) {
		return err
	}
	switch {
	case apierrors.IsUnauthorized(err):
		return &ClusterError{Cluster: c.String(), Why: "credentials refused (401 Unauthorized)", Err: err}
	case apierrors.IsForbidden(err):
		return &ClusterError{Cluster: c.String(), Why: "permission denied: " + statusMessage(err), Err: err}
	}
	if why := networkReason(err); why != "" {
		return &ClusterError{Cluster: c.String(), Why: "unreachable: " + why, Err: err}
	}
	return err
}

// ClusterError says a cluster could not be used, and why.
type ClusterError struct {
	Cluster string
	Why     string
	Err     error
}

func (e *ClusterError) Error() string { return e.Cluster + ": " + e.Why }
func (e *ClusterError) Unwrap() error { return e.Err }

func statusMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		if m := se.Status().Message; m != "" {
			return m
		}
	}
	return err.Error()
}

func networkReason(err error) string {
	var (
		dnsErr *net.DNSError
		opErr  *net.OpError
		urlErr *url.Error
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + dnsErr.Name
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case strings.Contains(err.Error(), "x509:") || strings.Contains(err.Error(), "tls:"):
		return "TLS: " + lastPart(err.Error())
	case errors.As(err, &opErr):
		return lastPart(opErr.Error())
	case errors.As(err, &urlErr):
		return lastPart(urlErr.Err.Error())
	}
	return ""
}

func lastPart(s string) string {
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		return s[i+2:]
	}
	return s
}
