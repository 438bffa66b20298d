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
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

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
// serverSetup is the server installed from this tree, exposed as a NodePort and reached from the
// host the way a developer reaches it, with the real binary.
type serverSetup struct {
	t         *testing.T
	cfg       *rest.Config
	cs        kubernetes.Interface
	dyn       dynamic.Interface
	kubecfg   string
	bin       string
	adminHome string
	info      *install.ServerInfo
	url       string
	iopts     install.Options
}

// setupServer builds serverImage, installs the server exposed as a NodePort (uninstalled when the
// test ends, unless ERGOMAKE_E2E_KEEP_SERVER=1) and checks it runs its 2 replicas.
func setupServer(t *testing.T, ctx context.Context) *serverSetup {
	t.Helper()
	s := &serverSetup{t: t, cfg: cluster.Config(t), kubecfg: cluster.KubeconfigPath(t), adminHome: t.TempDir()}
	s.cs = cluster.Clientset(t, s.cfg)
	var err error
	if s.dyn, err = dynamic.NewForConfig(s.cfg); err != nil {
		t.Fatal(err)
	}
	if err := operatorReady(s.cs); err != nil {
		t.Fatal(err)
	}
	buildServerImage(t)

	var out bytes.Buffer
	s.iopts = install.Options{Namespace: install.DefaultNamespace, Image: serverImage, Revision: "e2e-" + rand.String(6), Timeout: 3 * time.Minute, Out: &out}
	s.info, err = install.InstallServer(ctx, s.cfg, s.iopts, install.ServerOptions{Expose: install.ExposeNodePort})
	if err != nil {
		t.Fatalf("installing the server: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		if os.Getenv("ERGOMAKE_E2E_KEEP_SERVER") == "1" {
			return
		}
		var out bytes.Buffer
		iopts := s.iopts
		iopts.Out = &out
		if err := install.UninstallServer(context.Background(), s.cfg, iopts, install.ServerOptions{}); err != nil {
			t.Errorf("uninstalling the server: %v\n%s", err, out.String())
		}
	})
	t.Logf("install:\n%s", out.String())
	if len(s.info.URLs) == 0 || !s.info.Generated || !strings.HasPrefix(s.info.Fingerprint, "sha256:") {
		t.Fatalf("server info %+v", s.info)
	}
	d, err := s.cs.AppsV1().Deployments(install.DefaultNamespace).Get(ctx, server.ServiceName, metav1.GetOptions{})
	if err != nil || d.Status.ReadyReplicas != 2 {
		t.Fatalf("server Deployment: %v, ready %d of 2", err, d.Status.ReadyReplicas)
	}
	s.url = s.info.URLs[0]
	s.bin = ergomakeBinary(t)
	return s
}

// userEnv is the environment of ergomake run as a user: their own config directory, no kubeconfig.
func userEnv(home string) []string {
	return []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PATH=" + os.Getenv("PATH"), "NO_COLOR=1",
		"KUBECONFIG=" + filepath.Join(home, "no-kubeconfig")}
}

// ergomake runs the binary as the admin (kubeconfig) or as a user (userEnv).
func (s *serverSetup) ergomake(ctx context.Context, home string, admin bool, args ...string) (string, string, error) {
	s.t.Helper()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = userEnv(home)
	if admin {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+s.kubecfg)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// serverUser is a developer with a token of their own, logged in from the host.
type serverUser struct {
	name, home, token string
	client            *server.Client
}

// newUser has the admin create a token for name (ergomake server token create) and the user log
// in with it at the node's address, pinning the printed CA fingerprint; whoami answers name.
func (s *serverSetup) newUser(ctx context.Context, name string) *serverUser {
	t := s.t
	t.Helper()
	stdout, stderr, err := s.ergomake(ctx, s.adminHome, true, "server", "token", "create", name, "--ttl", "1h")
	if err != nil {
		t.Fatalf("token create %s: %v\n%s", name, err, stderr)
	}
	u := &serverUser{name: name, home: t.TempDir(), token: strings.TrimSpace(stdout)}
	stdout, stderr, err = s.ergomake(ctx, u.home, false, "login", s.url, "--token", u.token, "--ca-fingerprint", s.info.Fingerprint)
	if err != nil || !strings.Contains(stdout, "logged in to "+s.url+" as "+name) {
		t.Fatalf("login as %s: %v\nstdout: %s\nstderr: %s", name, err, stdout, stderr)
	}
	path := u.credentialsPath()
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
	return u
}

func (u *serverUser) credentialsPath() string {
	return filepath.Join(u.home, ".config", "ergomake", server.CredentialsFile)
}

// revoke revokes the user's token (ergomake server token revoke).
func (s *serverSetup) revoke(ctx context.Context, u *serverUser) {
	s.t.Helper()
	id := server.TokenID(u.token)
	if stdout, stderr, err := s.ergomake(ctx, s.adminHome, true, "server", "token", "revoke", id); err != nil || !strings.Contains(stdout, "revoked token "+id) {
		s.t.Fatalf("revoke: %v\n%s%s", err, stdout, stderr)
	}
}

// serverLogsWith are the logs of the server's pods once they hold every one of wants, or after
// 30 s: a request's audit line is written once its handler returned, which its client may see a
// moment before.
func (s *serverSetup) serverLogsWith(ctx context.Context, wants ...string) string {
	s.t.Helper()
	logs := s.serverLogs(ctx)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); logs = s.serverLogs(ctx) {
		missing := false
		for _, w := range wants {
			missing = missing || !strings.Contains(logs, w)
		}
		if !missing {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return logs
}

// serverLogs are the logs of the server's pods.
func (s *serverSetup) serverLogs(ctx context.Context) string {
	s.t.Helper()
	pods, err := s.cs.CoreV1().Pods(install.DefaultNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + server.ServiceName})
	if err != nil {
		s.t.Fatal(err)
	}
	var logs strings.Builder
	for _, p := range pods.Items {
		b, err := s.cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			s.t.Fatalf("logs of %s: %v", p.Name, err)
		}
		logs.Write(b)
	}
	return logs.String()
}

// TestServerLoginAndTenancy installs the server exposed as a NodePort and uses it from the host
// the way a developer does, with the real binary: the admin creates tokens (ergomake server token
// create), users log in at the node's address pinning the printed CA fingerprint, whoami answers
// who they are, each user lists and deletes only their own environments, and a revoked token is
// refused within seconds, with a reason that says to log in again.
func TestServerLoginAndTenancy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := setupServer(t, ctx)
	cfg, cs, dyn, kubecfg, info, url, iopts := s.cfg, s.cs, s.dyn, s.kubecfg, s.info, s.url, s.iopts
	// Installing again keeps the CA: the fingerprint users pinned stays valid.
	again, err := install.InstallServer(ctx, cfg, iopts, install.ServerOptions{Expose: install.ExposeNodePort})
	if err != nil || again.Fingerprint != info.Fingerprint {
		t.Fatalf("second install: fingerprint %v, %v; want %s", again, err, info.Fingerprint)
	}

	bin := s.bin
	// The install command's --server flags reach the same objects (a server-side dry run: the
	// cluster's shared operator and its settings are left as they are).
	dry := exec.CommandContext(ctx, bin, "install", "--dry-run", "--server", "--server-expose", "nodeport", "--image", serverImage)
	dry.Env = append(os.Environ(), "KUBECONFIG="+kubecfg)
	if b, err := dry.CombinedOutput(); err != nil || !strings.Contains(string(b), "applied (dry run) Deployment ergomake-system/ergomake-server") ||
		!strings.Contains(string(b), "applied (dry run) Service ergomake-system/ergomake-server") {
		t.Errorf("install --server --dry-run: %v\n%s", err, b)
	}
	ergomake := func(home string, admin bool, args ...string) (string, string, error) {
		t.Helper()
		return s.ergomake(ctx, home, admin, args...)
	}
	suffix := rand.String(5)
	alice, bob := "e2e-alice-"+suffix, "E2E.Bob@"+suffix // bob's name needs the collision-safe mapping

	type user = serverUser
	users := map[string]*user{}
	for _, name := range []string{alice, bob} {
		users[name] = s.newUser(ctx, name)
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
	s.revoke(ctx, users[alice])
	// Each check on a new connection, so that the NodePort spreads them over both replicas.
	credsOf := func(u *user) *server.Credentials {
		c, err := server.LoadCredentials(u.credentialsPath())
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
	wants := []string{
		"user=" + alice + " action=envs.delete env=shop status=200",
		"user=" + alice + " action=envs.delete env=" + nss[bob] + " status=404",
		"action=whoami env=- status=401",
	}
	var logs strings.Builder
	logs.WriteString(s.serverLogsWith(ctx, wants...))
	for _, want := range wants {
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
