package install

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/config"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Expose says how the server's Service is reached from outside the cluster.
type Expose string

const (
	// ExposeNone: a ClusterIP Service (reached in the cluster, or through the admin's Ingress).
	ExposeNone Expose = "none"
	// ExposeNodePort: a NodePort Service, reached at any node's address.
	ExposeNodePort Expose = "nodeport"
	// ExposeLoadBalancer: a LoadBalancer Service.
	ExposeLoadBalancer Expose = "loadbalancer"
)

// ServerOptions say how `ergomake install --server` installs the server.
type ServerOptions struct {
	// Expose: none (default), nodeport or loadbalancer.
	Expose Expose
	// TLSSecret names the admin's kubernetes.io/tls Secret in the operator's namespace; empty:
	// install generates a CA and a serving certificate in server.TLSSecretName (once: later
	// installs keep them, so the CA's fingerprint does not change).
	TLSSecret string
	// Image runs the server (default: the operator's image, Options.Image).
	Image string
	// Now is the clock of certificate generation (time.Now when nil).
	Now func() time.Time
}

// ServerInfo is what users need to log in.
type ServerInfo struct {
	// URLs the server is reached at (for none: its in-cluster name).
	URLs []string
	// Fingerprint of the CA at the top of the server's certificate chain (what
	// `ergomake login --ca-fingerprint` takes).
	Fingerprint string
	// Generated is true when the certificate is install's own (the CA must be pinned).
	Generated bool
}

func (s *ServerOptions) defaults(opts Options) error {
	switch s.Expose {
	case "":
		s.Expose = ExposeNone
	case ExposeNone, ExposeNodePort, ExposeLoadBalancer:
	default:
		return fmt.Errorf("server exposure %q: want none, nodeport or loadbalancer", s.Expose)
	}
	if s.Image == "" {
		s.Image = opts.Image
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return nil
}

// ServerObjects are the objects of the server, in apply order: its ServiceAccount, ClusterRoles
// (its own, and the one it binds in its users' namespaces), ClusterRoleBinding, Role,
// RoleBinding, Service and Deployment.
func ServerObjects(opts Options, sopts ServerOptions) ([]*unstructured.Unstructured, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := sopts.defaults(opts); err != nil {
		return nil, err
	}
	objs, err := decodeFiles(config.Server, "server/serviceaccount.yaml", "server/rbac.yaml", "server/service.yaml", "server/deployment.yaml")
	if err != nil {
		return nil, err
	}
	secret := sopts.TLSSecret
	if secret == "" {
		secret = server.TLSSecretName
	}
	for _, u := range objs {
		if err := placeIn(u, opts.Namespace); err != nil {
			return nil, err
		}
		switch u.GetKind() {
		case "ClusterRole", "ClusterRoleBinding":
			if err := scopeClusterObject(u, opts.Namespace); err != nil {
				return nil, err
			}
		case "Service":
			typ := map[Expose]string{ExposeNone: "ClusterIP", ExposeNodePort: "NodePort", ExposeLoadBalancer: "LoadBalancer"}[sopts.Expose]
			if err := unstructured.SetNestedField(u.Object, typ, "spec", "type"); err != nil {
				return nil, err
			}
		case "Deployment":
			if err := setContainer(u, "server", func(c map[string]any) { c["image"] = sopts.Image }); err != nil {
				return nil, err
			}
			if err := setRevision(u, opts.Revision); err != nil {
				return nil, err
			}
			volumes, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "volumes")
			for _, v := range volumes {
				if m, ok := v.(map[string]any); ok && m["name"] == "tls" {
					m["secret"] = map[string]any{"secretName": secret}
				}
			}
			if err := unstructured.SetNestedSlice(u.Object, volumes, "spec", "template", "spec", "volumes"); err != nil {
				return nil, err
			}
		}
	}
	return objs, nil
}

// scopeClusterObject names the server's ClusterRole or ClusterRoleBinding u (and what it refers
// to: the bound ClusterRole, the ClusterRole it may bind) for the server of namespace ns
// (server.ClusterScopedName): servers installed in two namespaces keep their own.
func scopeClusterObject(u *unstructured.Unstructured, ns string) error {
	u.SetName(server.ClusterScopedName(u.GetName(), ns))
	if u.GetKind() == "ClusterRoleBinding" {
		name, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
		return unstructured.SetNestedField(u.Object, server.ClusterScopedName(name, ns), "roleRef", "name")
	}
	rules, _, _ := unstructured.NestedSlice(u.Object, "rules")
	for _, r := range rules {
		m, ok := r.(map[string]any)
		resources, _ := m["resources"].([]any)
		if !ok || !slices.Contains(resources, any("clusterroles")) {
			continue // only the names of the ClusterRoles it may bind are the server's own
		}
		names, _ := m["resourceNames"].([]any)
		for i, n := range names {
			if n, ok := n.(string); ok {
				names[i] = server.ClusterScopedName(n, ns)
			}
		}
	}
	return unstructured.SetNestedSlice(u.Object, rules, "rules")
}

// InstallServer installs the server beside an installed operator (Install first): its TLS
// material, its configuration ConfigMap (created once with server.DefaultConfig, then the admin's
// to edit), RBAC, Service and Deployment; it waits until the server is available and returns
// where users reach it and the CA fingerprint they pin.
func InstallServer(ctx context.Context, cfg *rest.Config, opts Options, sopts ServerOptions) (*ServerInfo, error) {
	objs, c, err := prepareServer(cfg, &opts, &sopts)
	if err != nil {
		return nil, err
	}
	var ns corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: opts.Namespace}, &ns); err != nil {
		return nil, fmt.Errorf("namespace %s (install the operator first): %w", opts.Namespace, err)
	}
	info := &ServerInfo{}
	if err := ensureServerTLS(ctx, c, opts, sopts, info); err != nil {
		return nil, err
	}
	if err := ensureServerConfig(ctx, c, opts); err != nil {
		return nil, err
	}
	applyOpts := []client.ApplyOption{client.FieldOwner(FieldManager), client.ForceOwnership}
	if opts.DryRun {
		applyOpts = append(applyOpts, client.DryRunAll)
	}
	for _, u := range objs {
		if err := applyObject(ctx, c, opts, u, applyOpts); err != nil {
			return nil, err
		}
	}
	if opts.DryRun {
		return info, nil
	}
	if err := waitAvailable(ctx, c, opts, workload{what: "server", kind: "Deployment", name: server.ServiceName}); err != nil {
		return nil, err
	}
	if info.URLs, err = serverURLs(ctx, c, opts, sopts); err != nil {
		return nil, err
	}
	if sopts.Expose != ExposeNone {
		awaitReachable(ctx, opts, info.URLs, time.Minute)
	}
	return info, nil
}

// awaitReachable waits, up to limit, until one of urls completes a TLS handshake from this
// machine: a Service's new node port or load balancer takes a moment to route after the
// Deployment is available, and users log in right after install. It says so once when it waits;
// when none answers it warns (this machine may simply have no route to the nodes) and returns.
func awaitReachable(ctx context.Context, opts Options, urls []string, limit time.Duration) {
	var last error
	var targets []*url.URL
	for _, raw := range urls {
		u, err := server.NormalizeURL(raw)
		if err != nil {
			last = err
			continue
		}
		targets = append(targets, u)
	}
	if len(urls) == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	said := false
	err := wait.PollUntilContextCancel(wctx, time.Second, true, func(ctx context.Context) (bool, error) {
		for _, u := range targets {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			_, _, err := server.Probe(pctx, u)
			pcancel()
			if err == nil {
				return true, nil
			}
			last = err
		}
		if !said {
			said = true
			fmt.Fprintf(opts.Out, "server: waiting for %s to answer (%v)\n", urls[0], last)
		}
		return false, nil
	})
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(opts.Out, "warning: the server did not answer at %s from this machine within %s (%v): users need a route to it\n", strings.Join(urls, ", "), limit, last)
	}
}

func prepareServer(cfg *rest.Config, opts *Options, sopts *ServerOptions) ([]*unstructured.Unstructured, client.Client, error) {
	if err := opts.defaults(); err != nil {
		return nil, nil, err
	}
	if err := sopts.defaults(*opts); err != nil {
		return nil, nil, err
	}
	objs, err := ServerObjects(*opts, *sopts)
	if err != nil {
		return nil, nil, err
	}
	c, err := newClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	return objs, c, nil
}

// ensureServerTLS checks the admin's Secret, or generates the CA and serving certificate once.
func ensureServerTLS(ctx context.Context, c client.Client, opts Options, sopts ServerOptions, info *ServerInfo) error {
	name := sopts.TLSSecret
	if name == "" {
		name = server.TLSSecretName
	}
	var sec corev1.Secret
	err := c.Get(ctx, client.ObjectKey{Namespace: opts.Namespace, Name: name}, &sec)
	switch {
	case err == nil:
		chain, perr := server.ParseCerts(sec.Data[corev1.TLSCertKey])
		if perr != nil || len(sec.Data[corev1.TLSPrivateKeyKey]) == 0 {
			return fmt.Errorf("Secret %s/%s is not a usable TLS Secret (tls.crt with the certificate chain, tls.key): %v", opts.Namespace, name, perr)
		}
		info.Generated = sopts.TLSSecret == ""
		info.Fingerprint = server.Fingerprint(chain[len(chain)-1])
		if info.Generated {
			fmt.Fprintf(opts.Out, "kept the server's certificate (Secret %s/%s)\n", opts.Namespace, name)
		}
		return nil
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("reading Secret %s/%s: %w", opts.Namespace, name, err)
	case sopts.TLSSecret != "":
		return fmt.Errorf("no Secret %s/%s: --server-tls-secret names a kubernetes.io/tls Secret in the operator's namespace", opts.Namespace, name)
	}
	now := sopts.Now()
	ca, err := server.NewCA(now)
	if err != nil {
		return err
	}
	chain, key, err := ca.Issue(server.ServingHosts(opts.Namespace), now)
	if err != nil {
		return err
	}
	sec = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: opts.Namespace, Labels: map[string]string{
			v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, "app.kubernetes.io/name": server.ServiceName,
		}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: chain, corev1.TLSPrivateKeyKey: key, "ca.crt": ca.CertPEM},
	}
	createOpts := []client.CreateOption{client.FieldOwner(FieldManager)}
	if opts.DryRun {
		createOpts = append(createOpts, client.DryRunAll)
	}
	if err := c.Create(ctx, &sec, createOpts...); err != nil {
		return fmt.Errorf("storing the server's certificate (Secret %s/%s): %w", opts.Namespace, name, err)
	}
	info.Generated = true
	info.Fingerprint = server.Fingerprint(ca.Cert)
	fmt.Fprintf(opts.Out, "%s the server's CA and certificate (Secret %s/%s)\n", opts.verb("generated"), opts.Namespace, name)
	return nil
}

// ensureServerConfig creates the server's ConfigMap with the defaults when there is none; an
// existing one is the admin's and is left alone.
func ensureServerConfig(ctx context.Context, c client.Client, opts Options) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: server.ConfigName, Namespace: opts.Namespace, Labels: map[string]string{
			v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue, "app.kubernetes.io/name": server.ServiceName,
		}},
		Data: server.DefaultConfig().Data(),
	}
	createOpts := []client.CreateOption{client.FieldOwner(FieldManager)}
	if opts.DryRun {
		createOpts = append(createOpts, client.DryRunAll)
	}
	err := c.Create(ctx, cm, createOpts...)
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating the server's configuration (ConfigMap %s/%s): %w", opts.Namespace, server.ConfigName, err)
	}
	fmt.Fprintf(opts.Out, "%s ConfigMap %s/%s (the server's limits per user: edit it to change them)\n", opts.verb("created"), opts.Namespace, server.ConfigName)
	return nil
}

// serverURLs are where users reach the server.
func serverURLs(ctx context.Context, c client.Client, opts Options, sopts ServerOptions) ([]string, error) {
	key := client.ObjectKey{Namespace: opts.Namespace, Name: server.ServiceName}
	var svc corev1.Service
	if err := c.Get(ctx, key, &svc); err != nil {
		return nil, err
	}
	switch sopts.Expose {
	case ExposeNodePort:
		port := 0
		for _, p := range svc.Spec.Ports {
			if p.Name == "https" {
				port = int(p.NodePort)
			}
		}
		var nodes corev1.NodeList
		if err := c.List(ctx, &nodes); err != nil {
			return nil, fmt.Errorf("listing nodes for their addresses: %w", err)
		}
		return NodePortURLs(nodes.Items, port), nil
	case ExposeLoadBalancer:
		var urls []string
		wctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
		last := ""
		err := wait.PollUntilContextCancel(wctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
			if err := c.Get(ctx, key, &svc); err != nil {
				return false, client.IgnoreNotFound(err)
			}
			urls = nil
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				host := ing.Hostname
				if host == "" {
					host = ing.IP
				}
				if host != "" {
					urls = append(urls, "https://"+hostPort(host, 443))
				}
			}
			if len(urls) == 0 && last == "" {
				last = "waiting"
				fmt.Fprintf(opts.Out, "server %s: waiting for the load balancer's address\n", key)
			}
			return len(urls) > 0, nil
		})
		if err != nil {
			return nil, fmt.Errorf("the server's load balancer got no address within %s (does the cluster provide load balancers?)", opts.Timeout)
		}
		return urls, nil
	}
	return []string{"https://" + server.ServiceName + "." + opts.Namespace + ".svc"}, nil
}

// NodePortURLs are https://ADDRESS:port for each node: its ExternalIP when it has one, else its
// InternalIP.
func NodePortURLs(nodes []corev1.Node, port int) []string {
	var out []string
	for _, n := range nodes {
		addr := ""
		for _, want := range []corev1.NodeAddressType{corev1.NodeExternalIP, corev1.NodeInternalIP} {
			for _, a := range n.Status.Addresses {
				if a.Type == want && addr == "" {
					addr = a.Address
				}
			}
		}
		if addr != "" {
			out = append(out, "https://"+hostPort(addr, port))
		}
	}
	return out
}

func hostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// UninstallServer removes the server: its Deployment, Service, RBAC, configuration and generated
// certificate (an admin's certificate Secret is left), its token Secrets, and its users'
// namespaces (their environments go with them). Objects already gone are skipped.
func UninstallServer(ctx context.Context, cfg *rest.Config, opts Options, sopts ServerOptions) error {
	objs, c, err := prepareServer(cfg, &opts, &sopts)
	if err != nil {
		return err
	}
	delOpts := []client.DeleteOption{client.PropagationPolicy(metav1.DeletePropagationForeground)}
	if opts.DryRun {
		delOpts = append(delOpts, client.DryRunAll)
	}
	extra := []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: server.ConfigName, Namespace: opts.Namespace}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: server.TLSSecretName, Namespace: opts.Namespace}},
	}
	var all []client.Object
	for i := len(objs) - 1; i >= 0; i-- {
		all = append(all, objs[i])
	}
	all = append(all, extra...)
	for _, o := range all {
		err := c.Delete(ctx, o, delOpts...)
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("deleting %T %s: %w", o, o.GetName(), err)
		}
		fmt.Fprintf(opts.Out, "%s %s/%s\n", opts.verb("deleted"), o.GetNamespace(), o.GetName())
	}
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.InNamespace(opts.Namespace), client.MatchingLabels{server.LabelToken: "true"}); err != nil {
		return fmt.Errorf("listing the server's tokens: %w", err)
	}
	for i := range secrets.Items {
		if err := c.Delete(ctx, &secrets.Items[i], delOpts...); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting token Secret %s: %w", secrets.Items[i].Name, err)
		}
	}
	if n := len(secrets.Items); n > 0 {
		fmt.Fprintf(opts.Out, "%s %d server tokens\n", opts.verb("deleted"), n)
	}
	var nss corev1.NamespaceList
	if err := c.List(ctx, &nss, client.HasLabels{server.LabelUser}, client.MatchingLabels{v1alpha1.LabelManagedBy: v1alpha1.ManagedByValue}); err != nil {
		return fmt.Errorf("listing the server users' namespaces: %w", err)
	}
	for i := range nss.Items {
		if mine, err := servedBy(ctx, c, nss.Items[i].Name, opts.Namespace); err != nil {
			return err
		} else if !mine {
			continue // another server's user (a server installed in another namespace)
		}
		if err := c.Delete(ctx, &nss.Items[i], delOpts...); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting namespace %s: %w", nss.Items[i].Name, err)
		}
		fmt.Fprintf(opts.Out, "%s Namespace %s\n", opts.verb("deleted"), nss.Items[i].Name)
	}
	return nil
}

// servedBy says whether the user namespace ns belongs to the server of namespace serverNS: its
// RoleBinding binds that server's ServiceAccount. A namespace without the RoleBinding (left
// half-made) is the default namespace's server's.
func servedBy(ctx context.Context, c client.Client, ns, serverNS string) (bool, error) {
	var rb rbacv1.RoleBinding
	err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: server.ServiceName}, &rb)
	if apierrors.IsNotFound(err) {
		return serverNS == DefaultNamespace, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading RoleBinding %s/%s: %w", ns, server.ServiceName, err)
	}
	for _, s := range rb.Subjects {
		if s.Kind == rbacv1.ServiceAccountKind && s.Name == server.ServiceName {
			return s.Namespace == serverNS, nil
		}
	}
	return serverNS == DefaultNamespace, nil
}
