//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/dynamic"

	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/operator"
	"github.com/ergomake/ergomake/internal/server"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// serverImage is the operator image built from the working tree under its own tag, so that the
// server under test runs this tree's code without replacing the cluster's shared operator image.
const serverImage = "ergomake.test/ergomake-server:e2e"

// buildServerImage builds serverImage with the harness's image tooling and loads it into the
// cluster (quick when nothing changed).
func buildServerImage(t *testing.T) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.Command(filepath.Join(repo, "hack", "cluster", "image.sh"), "--no-shell", serverImage, "./cmd/ergomake-operator")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", serverImage, err, out)
	}
}

// TestServerLoginAndTenancy installs the server exposed as a NodePort and uses it from the host
// the way a developer does, with the real binary: the admin creates tokens (ergomake server token
// create), users log in at the node's address pinning the printed CA fingerprint, whoami answers
// who they are, each user lists and deletes only their own environments, and a revoked token is
// refused within seconds, with a reason that says to log in again.
func TestServerLoginAndTenancy(t *testing.T) {
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kubecfg := cluster.KubeconfigPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := operatorReady(cs); err != nil {
		t.Fatal(err)
	}
	buildServerImage(t)

	var out bytes.Buffer
	iopts := install.Options{Namespace: install.DefaultNamespace, Image: serverImage, Revision: "e2e-" + rand.String(6), Timeout: 3 * time.Minute, Out: &out}
	info, err := install.InstallServer(ctx, cfg, iopts, install.ServerOptions{Expose: install.ExposeNodePort})
	if err != nil {
		t.Fatalf("installing the server: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		if os.Getenv("ERGOMAKE_E2E_KEEP_SERVER") == "1" {
			return
		}
		var out bytes.Buffer
		iopts.Out = &out
		if err := install.UninstallServer(context.Background(), cfg, iopts, install.ServerOptions{}); err != nil {
			t.Errorf("uninstalling the server: %v\n%s", err, out.String())
		}
	})
	t.Logf("install:\n%s", out.String())
	if len(info.URLs) == 0 || !info.Generated || !strings.HasPrefix(info.Fingerprint, "sha256:") {
		t.Fatalf("server info %+v", info)
	}
	d, err := cs.AppsV1().Deployments(install.DefaultNamespace).Get(ctx, server.ServiceName, metav1.GetOptions{})
	if err != nil || d.Status.ReadyReplicas != 2 {
		t.Fatalf("server Deployment: %v, ready %d of 2", err, d.Status.ReadyReplicas)
	}
	// Installing again keeps the CA: the fingerprint users pinned stays valid.
	again, err := install.InstallServer(ctx, cfg, iopts, install.ServerOptions{Expose: install.ExposeNodePort})
	if err != nil || again.Fingerprint != info.Fingerprint {
		t.Fatalf("second install: fingerprint %v, %v; want %s", again, err, info.Fingerprint)
	}
	url := info.URLs[0]

	bin := ergomakeBinary(t)
	// The install command's --server flags reach the same objects (a server-side dry run: the
	// cluster's shared operator and its settings are left as they are).
	dry := exec.CommandContext(ctx, bin, "install", "--dry-run", "--server", "--server-expose", "nodeport", "--image", serverImage)
	dry.Env = append(os.Environ(), "KUBECONFIG="+kubecfg)
	if b, err := dry.CombinedOutput(); err != nil || !strings.Contains(string(b), "applied (dry run) Deployment ergomake-system/ergomake-server") ||
		!strings.Contains(string(b), "applied (dry run) Service ergomake-system/ergomake-server") {
		t.Errorf("install --server --dry-run: %v\n%s", err, b)
	}
	// ergomake runs as the admin (kubeconfig) or as a user (its own config directory, no kubeconfig).
	ergomake := func(home string, admin bool, args ...string) (string, string, error) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin, args...)
		env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PATH=" + os.Getenv("PATH"), "NO_COLOR=1"}
		if admin {
			env = append(env, "KUBECONFIG="+kubecfg)
		} else {
			env = append(env, "KUBECONFIG="+filepath.Join(home, "no-kubeconfig"))
		}
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	adminHome := t.TempDir()
	suffix := rand.String(5)
	alice, bob := "e2e-alice-"+suffix, "E2E.Bob@"+suffix // bob's name needs the collision-safe mapping

	type user struct {
		name, home, token string
		client            *server.Client
	}
	users := map[string]*user{}
	for _, name := range []string{alice, bob} {
		stdout, stderr, err := ergomake(adminHome, true, "server", "token", "create", name, "--ttl", "1h")
		if err != nil {
			t.Fatalf("token create %s: %v\n%s", name, err, stderr)
		}
		u := &user{name: name, home: t.TempDir(), token: strings.TrimSpace(stdout)}
		// The developer logs in from the host at the node's address, pinning the printed CA.
		stdout, stderr, err = ergomake(u.home, false, "login", url, "--token", u.token, "--ca-fingerprint", info.Fingerprint)
		if err != nil || !strings.Contains(stdout, "logged in to "+url+" as "+name) {
			t.Fatalf("login as %s: %v\nstdout: %s\nstderr: %s", name, err, stdout, stderr)
		}
		path := filepath.Join(u.home, ".config", "ergomake", server.CredentialsFile)
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("credentials of %s: %v %v", name, err, st)
		}
		creds, err := server.LoadCredentials(path)
		if err != nil {
			t.Fatal(err)
		}
		if u.client, err = server.NewClient(creds); err != nil {
			t.Fatal(err)
		}
		who, err := u.client.WhoAmI(ctx)
		if err != nil || who.User != name {
			t.Fatalf("whoami of %s: %+v, %v", name, who, err)
		}
		users[name] = u
	}
	t.Cleanup(func() {
		for _, name := range []string{alice, bob} {
			_ = cs.CoreV1().Namespaces().Delete(context.Background(), server.Namespace(name, "shop"), metav1.DeleteOptions{})
		}
	})

	// A wrong fingerprint is refused before the token is sent.
	other, err := server.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := ergomake(t.TempDir(), false, "login", url, "--token", users[alice].token, "--ca-fingerprint", server.Fingerprint(other.Cert)); err == nil || !strings.Contains(stderr, "not the one you expect") {
		t.Errorf("login with another CA's fingerprint: %v\n%s", err, stderr)
	}

	// Each user gets an environment of the same project "shop": the namespaces the server makes
	// for `up` (Tenancy.EnsureNamespace), with an ErgomakeEnv that no operator handles.
	ten := &server.Tenancy{Kube: cs, Dynamic: dyn, Namespace: install.DefaultNamespace}
	nss := map[string]string{}
	for _, name := range []string{alice, bob} {
		ns, err := ten.EnsureNamespace(ctx, name, "shop")
		if err != nil {
			t.Fatalf("namespace of %s: %v", name, err)
		}
		nss[name] = ns
		if _, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, server.QuotaName, metav1.GetOptions{}); err != nil {
			t.Errorf("quota of %s: %v", ns, err)
		}
		n, _ := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if n.Labels["pod-security.kubernetes.io/enforce"] == "privileged" || n.Labels["pod-security.kubernetes.io/enforce"] == "" {
			t.Errorf("namespace %s enforces %q, want baseline or stricter", ns, n.Labels["pod-security.kubernetes.io/enforce"])
		}
		env := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": v1alpha1.GroupVersion.String(), "kind": v1alpha1.Kind,
			"metadata": map[string]any{"name": "shop", "namespace": ns, "labels": map[string]any{operator.LabelInstance: "server-e2e-nobody"}},
			"spec": map[string]any{"project": "shop", "services": []any{map[string]any{
				"name": "web", "serviceName": "web", "image": cluster.TestImage, "lifecycle": "LongRunning",
			}}},
		}}
		if _, err := dyn.Resource(v1alpha1.GroupVersionResource).Namespace(ns).Create(ctx, env, metav1.CreateOptions{}); err != nil {
			t.Fatalf("ErgomakeEnv of %s: %v", name, err)
		}
	}
	if nss[alice] == nss[bob] {
		t.Fatalf("alice and bob share namespace %s", nss[alice])
	}
	for _, name := range []string{alice, bob} {
		envs, err := users[name].client.ListEnvs(ctx)
		if err != nil || len(envs) != 1 || envs[0].Namespace != nss[name] || envs[0].Name != "shop" {
			t.Errorf("%s lists %+v, %v; want only shop in %s", name, envs, err, nss[name])
		}
	}

	// alice deletes "shop": hers goes, bob's stays.
	if _, err := users[alice].client.DeleteEnv(ctx, "shop"); err != nil {
		t.Fatalf("alice deleting her shop: %v", err)
	}
	if n, err := cs.CoreV1().Namespaces().Get(ctx, nss[alice], metav1.GetOptions{}); err == nil && n.DeletionTimestamp == nil {
		t.Errorf("alice's namespace not being deleted")
	}
	if n, err := cs.CoreV1().Namespaces().Get(ctx, nss[bob], metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
		t.Fatalf("bob's namespace after alice's delete: %v", err)
	}
	if _, err := dyn.Resource(v1alpha1.GroupVersionResource).Namespace(nss[bob]).Get(ctx, "shop", metav1.GetOptions{}); err != nil {
		t.Errorf("bob's environment after alice's delete: %v", err)
	}
	// alice cannot reach bob's by any name: she has no environment called after his namespace.
	_, err = users[alice].client.DeleteEnv(ctx, nss[bob])
	var ae *server.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
		t.Errorf("alice deleting %q = %v, want 404", nss[bob], err)
	}
	if n, err := cs.CoreV1().Namespaces().Get(ctx, nss[bob], metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
		t.Fatalf("bob's namespace after alice's attempts: %v", err)
	}
	if envs, err := users[alice].client.ListEnvs(ctx); err != nil || len(envs) > 1 || (len(envs) == 1 && envs[0].Phase != "Deleting") {
		t.Errorf("alice lists %+v, %v after deleting hers", envs, err)
	}

	// The admin revokes alice's token: within seconds every replica refuses it, saying why.
	id := server.TokenID(users[alice].token)
	if stdout, stderr, err := ergomake(adminHome, true, "server", "token", "revoke", id); err != nil || !strings.Contains(stdout, "revoked token "+id) {
		t.Fatalf("revoke: %v\n%s%s", err, stdout, stderr)
	}
	// Each check on a new connection, so that the NodePort spreads them over both replicas.
	credsOf := func(u *user) *server.Credentials {
		c, err := server.LoadCredentials(filepath.Join(u.home, ".config", "ergomake", server.CredentialsFile))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	aliceCreds := credsOf(users[alice])
	deadline := time.Now().Add(20 * time.Second)
	for consecutive := 0; consecutive < 10; {
		if time.Now().After(deadline) {
			t.Fatalf("a revoked token still accepted 20s after revocation")
		}
		c, err := server.NewClient(aliceCreds)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.WhoAmI(ctx)
		var ae *server.APIError
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusUnauthorized && ae.Message == server.ErrRevoked.Error():
			consecutive++
		case err == nil: // a replica's token cache (5s)
			consecutive = 0
			time.Sleep(200 * time.Millisecond)
		default:
			t.Fatalf("whoami with a revoked token: %v", err)
		}
	}
	if who, err := users[bob].client.WhoAmI(ctx); err != nil || who.User != bob {
		t.Errorf("bob after alice's revocation: %+v, %v", who, err)
	}
	// bob deletes his own.
	if _, err := users[bob].client.DeleteEnv(ctx, "shop"); err != nil {
		t.Errorf("bob deleting his shop: %v", err)
	}
	if n, err := cs.CoreV1().Namespaces().Get(ctx, nss[bob], metav1.GetOptions{}); err == nil && n.DeletionTimestamp == nil {
		t.Errorf("bob's namespace not being deleted")
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}

	// The server's logs hold one audit line per action, and no token.
	pods, err := cs.CoreV1().Pods(install.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + server.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	for _, p := range pods.Items {
		b, err := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			t.Fatalf("logs of %s: %v", p.Name, err)
		}
		logs.Write(b)
	}
	for _, want := range []string{
		"user=" + alice + " action=envs.delete env=shop status=200",
		"user=" + alice + " action=envs.delete env=" + nss[bob] + " status=404",
		"action=whoami env=- status=401",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("server logs lack %q", want)
		}
	}
	for _, u := range users {
		if strings.Contains(logs.String(), strings.TrimPrefix(u.token, server.TokenPrefix)) {
			t.Errorf("server logs hold %s's token", u.name)
		}
	}
	if t.Failed() {
		t.Logf("server logs:\n%s", logs.String())
	}
}
