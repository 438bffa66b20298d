//go:build e2e

package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/ergomake/ergomake/config"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/wait"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

var errReady = errors.New("ready")

// asServer gives the server's identity its RBAC of config/server/rbac.yaml (ClusterRoles renamed
// for this test, so that an installed server's are untouched) in the server's namespace ns, and
// returns a config that impersonates it, with the name of its per-namespace ClusterRole.
func asServer(t *testing.T, cfg *rest.Config, cs kubernetes.Interface, ns string) (*rest.Config, string) {
	t.Helper()
	ctx := context.Background()
	prefix := "e2e-" + rand.String(5) + "-"
	b, err := config.Server.ReadFile("server/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rbac := cs.RbacV1()
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatal(err)
		}
		switch tm.Kind {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			must(t, yaml.Unmarshal([]byte(doc), &r))
			r.Name = prefix + r.Name
			for i := range r.Rules {
				for j, n := range r.Rules[i].ResourceNames {
					r.Rules[i].ResourceNames[j] = prefix + n
				}
			}
			_, err = rbac.ClusterRoles().Create(ctx, &r, metav1.CreateOptions{})
			t.Cleanup(func() { _ = rbac.ClusterRoles().Delete(context.Background(), r.Name, metav1.DeleteOptions{}) })
		case "ClusterRoleBinding":
			var r rbacv1.ClusterRoleBinding
			must(t, yaml.Unmarshal([]byte(doc), &r))
			r.Name, r.RoleRef.Name, r.Subjects[0].Namespace = prefix+r.Name, prefix+r.RoleRef.Name, ns
			_, err = rbac.ClusterRoleBindings().Create(ctx, &r, metav1.CreateOptions{})
			t.Cleanup(func() { _ = rbac.ClusterRoleBindings().Delete(context.Background(), r.Name, metav1.DeleteOptions{}) })
		case "Role":
			var r rbacv1.Role
			must(t, yaml.Unmarshal([]byte(doc), &r))
			r.Namespace = ns
			_, err = rbac.Roles(ns).Create(ctx, &r, metav1.CreateOptions{})
		case "RoleBinding":
			var r rbacv1.RoleBinding
			must(t, yaml.Unmarshal([]byte(doc), &r))
			r.Namespace, r.Subjects[0].Namespace = ns, ns
			_, err = rbac.RoleBindings(ns).Create(ctx, &r, metav1.CreateOptions{})
		default:
			t.Fatalf("rbac.yaml: unexpected %q", tm.Kind)
		}
		must(t, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: ServiceName, Namespace: ns}}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	as := rest.CopyConfig(cfg)
	as.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + ServiceName}
	return as, prefix + EnvRoleName
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestEnvsThroughServerE2E runs the envs routes in-process against the local cluster, whose
// operator reconciles what they apply: two users with their own tokens; alice's project becomes
// Ready and her watch streams it past the server's write timeout; heartbeat, 409 for another
// session, detach; bob sees none of it (404 everywhere); 413 over the size limit; a privileged
// project refused under baseline naming service and key; and nothing left once deleted.
func TestEnvsThroughServerE2E(t *testing.T) {
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	serverNS := cluster.Namespace(t, cs, "e2e-server")
	tenancy := &Tenancy{Kube: cs, Dynamic: dyn, Namespace: serverNS}
	// The handler runs with the server's own rights (config/server/rbac.yaml), not the admin's.
	scfg, envRole := asServer(t, cfg, cs, serverNS)
	sdyn, err := dynamic.NewForConfig(scfg)
	if err != nil {
		t.Fatal(err)
	}
	f := serveFixture(t, cs, &Tenancy{Kube: cluster.Clientset(t, scfg), Dynamic: sdyn, Namespace: serverNS, EnvRole: envRole},
		HandlerOptions{MaxApplyBody: 256 << 10},
		func(hs *http.Server) { hs.WriteTimeout = 5 * time.Second }) // short, to prove the watch outlives it

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	suffix := rand.String(5)
	aliceUser, bobUser := "alice"+suffix, "bob"+suffix
	alice, bob := f.client(t, f.token(t, aliceUser)), f.client(t, f.token(t, bobUser))
	t.Cleanup(func() {
		for _, u := range []string{aliceUser, bobUser} {
			for _, p := range []string{"shop", "priv"} {
				if ns, err := tenancy.DeleteEnv(context.Background(), u, p); err == nil {
					if t.Failed() {
						cluster.DumpNamespace(t, cs, ns)
					}
					t.Logf("cleanup: deleted %s", ns)
				}
			}
		}
	})

	// 1. alice applies; the session's user is the token's, whatever the client claims.
	req := applyRequest(t, map[string]string{
		"compose.yaml": `name: shop
services:
  web:
    image: ergomake.test/testapp:latest
    pull_policy: missing
    environment:
      SERVICE: web
      PORTS: "8080"
      TOKEN: s3cret
    volumes:
      - ./conf/app.conf:/etc/app.conf:ro
    ports:
      - "8080:8080"
`,
		"conf/app.conf": "greeting = hello\n",
	}, "session-a")
	req.Session.User = "mallory"
	resp, err := alice.Apply(ctx, req)
	if err != nil {
		t.Fatalf("alice's apply: %v", err)
	}
	ns := Namespace(aliceUser, "shop")
	if !resp.Created || resp.Env == nil || resp.Env.Namespace != ns || resp.Env.UID == "" {
		t.Fatalf("apply answered %+v", resp)
	}
	if c, _ := v1alpha1.EnvCreator(resp.Env); c == nil || c.Username != aliceUser {
		t.Errorf("creator %+v, want %s", c, aliceUser)
	}
	if s, _ := v1alpha1.EnvSession(resp.Env); s == nil || s.User != aliceUser || s.ID != "session-a" {
		t.Errorf("session %+v, want alice's session-a", s)
	}
	if len(resp.Warnings) == 0 {
		t.Errorf("no warnings (the bind mount is shipped as a snapshot)")
	}
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, resp.Env.Spec.Services[0].EnvSecret, metav1.GetOptions{})
	if err != nil || string(sec.Data["TOKEN"]) != "s3cret" || resp.Env.Spec.Services[0].EnvSecretVersion == "" {
		t.Errorf("env Secret %v, %v (version %q)", sec, err, resp.Env.Spec.Services[0].EnvSecretVersion)
	}
	if n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil || n.Labels[v1alpha1.LabelNamespaceEnvUID] != string(resp.Env.UID) {
		t.Errorf("namespace %s not marked with the environment's UID: %v", ns, err)
	}

	// 2. The watch streams until Ready, past the server's 5s write timeout.
	start := time.Now()
	var states []string
	werr := alice.WatchEnv(ctx, "shop", func(ev WatchEvent) error {
		if ev.Env == nil {
			return fmt.Errorf("event without env: %+v", ev)
		}
		st := wait.Evaluate(ev.Env)
		states = append(states, st.String())
		if st == wait.Ready {
			return errReady
		}
		return nil
	})
	if !errors.Is(werr, errReady) {
		t.Fatalf("watch ended with %v after %s; states %v", werr, time.Since(start), states)
	}
	t.Logf("ready after %s; states %v", time.Since(start).Round(time.Millisecond), states)
	env, err := alice.GetEnv(ctx, "shop")
	if err != nil || wait.Evaluate(env) != wait.Ready {
		t.Fatalf("GetEnv = %v, %v", env, err)
	}

	// A watch that outlives the write timeout, writing keep-alives past it, ends when the
	// client goes.
	defer func(d time.Duration) { watchKeepAlive = d }(watchKeepAlive)
	watchKeepAlive = time.Second
	wctx, wcancel := context.WithTimeout(ctx, 8*time.Second)
	n := 0
	err = alice.WatchEnv(wctx, "shop", func(WatchEvent) error { n++; return nil })
	wcancel()
	if !errors.Is(err, context.DeadlineExceeded) || n == 0 {
		t.Errorf("an idle watch: %v after %d events, want the context's end", err, n)
	}

	// 3. Heartbeat and ownership.
	if err := alice.Heartbeat(ctx, "shop", "session-a"); err != nil {
		t.Errorf("heartbeat: %v", err)
	}
	if err := alice.Heartbeat(ctx, "shop", "session-b"); apiStatus(err) != http.StatusConflict {
		t.Errorf("heartbeat of another session: %v, want 409", err)
	}
	other := req
	other.Session.ID = "session-b"
	_, err = alice.Apply(ctx, other)
	if apiStatus(err) != http.StatusConflict || !strings.Contains(err.Error(), aliceUser+" is attached") || !strings.Contains(err.Error(), "since") {
		t.Errorf("apply from another session: %v (status %d), want 409 saying who and since when", err, apiStatus(err))
	}

	// 4. bob sees nothing of alice's.
	checks := map[string]error{}
	_, checks["get"] = bob.GetEnv(ctx, "shop")
	checks["watch"] = bob.WatchEnv(ctx, "shop", func(WatchEvent) error { return nil })
	checks["heartbeat"] = bob.Heartbeat(ctx, "shop", "session-a")
	checks["detach"] = bob.Detach(ctx, "shop", "session-a", time.Hour)
	_, checks["delete"] = bob.DeleteEnvWait(ctx, "shop")
	for what, err := range checks {
		if apiStatus(err) != http.StatusNotFound {
			t.Errorf("bob's %s of alice's environment: %v (status %d), want 404", what, err, apiStatus(err))
		}
	}
	if l, err := bob.ListEnvs(ctx); err != nil || len(l) != 0 {
		t.Errorf("bob lists %v, %v", l, err)
	}

	// 5. Detach, then another session may attach (not created by it).
	if err := alice.Detach(ctx, "shop", "session-a", time.Hour); err != nil {
		t.Fatalf("detach: %v", err)
	}
	env, err = alice.GetEnv(ctx, "shop")
	if err != nil || env.Spec.TTL == nil || env.Spec.TTL.Duration != time.Hour || env.Annotations[v1alpha1.AnnotationSession] != "" {
		t.Errorf("after detach: %+v, %v", env, err)
	}
	again, err := alice.Apply(ctx, other)
	if err != nil || again.Created {
		t.Errorf("apply after detach: %+v, %v", again, err)
	}

	// 6. Over the size limit; above the ceiling.
	big := applyRequest(t, map[string]string{"compose.yaml": "name: big\nservices:\n  web:\n    image: ergomake.test/testapp:latest\n    volumes: [./big.txt:/big.txt:ro]\n",
		"big.txt": strings.Repeat("x", 300<<10)}, "s")
	if _, err := alice.Apply(ctx, big); apiStatus(err) != http.StatusRequestEntityTooLarge {
		t.Errorf("over the limit: %v (status %d), want 413", err, apiStatus(err))
	}
	priv := applyRequest(t, map[string]string{"compose.yaml": "name: priv\nservices:\n  web:\n    image: ergomake.test/testapp:latest\n    privileged: true\n"}, "s")
	_, err = alice.Apply(ctx, priv)
	if apiStatus(err) != http.StatusForbidden || !strings.Contains(err.Error(), `service "web": privileged`) {
		t.Errorf("privileged: %v (status %d), want 403 naming service and key", err, apiStatus(err))
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, Namespace(aliceUser, "priv"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused project left its namespace: %v", err)
	}

	// 7. Delete and wait: a watch sees the deletion last; nothing is left.
	var wg sync.WaitGroup
	var last WatchEvent
	var watchErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchErr = alice.WatchEnv(ctx, "shop", func(ev WatchEvent) error { last = ev; return nil })
	}()
	time.Sleep(time.Second)
	d, err := alice.DeleteEnvWait(ctx, "shop")
	if err != nil || d.Namespace != ns {
		t.Fatalf("delete: %+v, %v", d, err)
	}
	wg.Wait()
	if watchErr != nil || !last.Deleted {
		t.Errorf("the watch ended with %v, last event %+v; want deleted", watchErr, last)
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s still there after DELETE ?wait=1: %v", ns, err)
	}
	left, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: LabelUser + "=" + UserHash(aliceUser)})
	if err != nil || len(left.Items) > 0 {
		t.Errorf("alice's namespaces left: %v, %v", left, err)
	}
}
