package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/internal/testutil/tree"
	"github.com/ergomake/ergomake/internal/translate"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// applyRequest does what the CLI does before POST /v1/envs: load the project in dir (files:
// name → content, compose.yaml among them), translate it recording the files read, and encode
// both.
func applyRequest(t *testing.T, files map[string]string, session string) ApplyRequest {
	t.Helper()
	dir := t.TempDir()
	tree.Write(t, dir, files)
	p, err := compose.Load(context.Background(), compose.Options{WorkingDir: dir, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	rec := translate.NewRecorder()
	if _, err := translate.Translate(p, translate.Options{Files: rec}); err != nil {
		t.Fatal(err)
	}
	pj, err := translate.EncodeProject(p)
	if err != nil {
		t.Fatal(err)
	}
	return ApplyRequest{Project: pj, Files: rec.Files(), TTL: "10m", Session: v1alpha1.Session{
		ID: session, Host: "laptop", PID: 42, StartedAt: metav1.Now(), HeartbeatEvery: metav1.Duration{Duration: 5 * time.Second}}}
}

// TestApplyRefusals: what the server refuses before anything exists in the cluster: a body over
// the limit (413), a malformed project (400), a file the client did not ship (422, naming it), a
// project above the baseline ceiling whatever the install allows (403, naming service and key).
func TestApplyRefusals(t *testing.T) {
	f := newFixture(t, HandlerOptions{MaxApplyBody: 64 << 10})
	ctx := context.Background()
	c := f.client(t, f.token(t, "alice"))

	big := applyRequest(t, map[string]string{"compose.yaml": "name: big\nservices:\n  web:\n    image: nginx\n    volumes: [./big.txt:/big.txt:ro]\n",
		"big.txt": strings.Repeat("x", 100<<10)}, "s1")
	if _, err := c.Apply(ctx, big); apiStatus(err) != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the limit: %v (status %d), want 413", err, apiStatus(err))
	}

	bad := applyRequest(t, map[string]string{"compose.yaml": "name: shop\nservices:\n  web:\n    image: nginx\n"}, "s1")
	bad.Project = []byte(`{"Name": "shop", "Services": {"web": {"Name": "web"}}}`) // no WorkingDir
	if _, err := c.Apply(ctx, bad); apiStatus(err) != http.StatusBadRequest {
		t.Errorf("a project without its directory: %v (status %d), want 400", err, apiStatus(err))
	}

	missing := applyRequest(t, map[string]string{"compose.yaml": "name: shop\nservices:\n  web:\n    image: nginx\n    secrets: [token]\nsecrets:\n  token:\n    file: ./token.txt\n",
		"token.txt": "s3cret"}, "s1")
	for k := range missing.Files {
		if strings.HasSuffix(k, "token.txt") {
			delete(missing.Files, k)
		}
	}
	_, err := c.Apply(ctx, missing)
	if apiStatus(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "token.txt") || !strings.Contains(err.Error(), `service "web"`) {
		t.Errorf("a file not shipped: %v (status %d), want 422 naming it", err, apiStatus(err))
	}

	// The install allows privileged for kubeconfig users; the server caps at baseline.
	if _, err := f.kube.CoreV1().ConfigMaps("ergomake-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: clustersettings.Name, Namespace: "ergomake-system"},
		Data:       map[string]string{clustersettings.KeyPodSecurity: clustersettings.PodSecurityPrivileged}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	priv := applyRequest(t, map[string]string{"compose.yaml": "name: shop\nservices:\n  web:\n    image: nginx\n    privileged: true\n"}, "s1")
	_, err = c.Apply(ctx, priv)
	if apiStatus(err) != http.StatusForbidden || !strings.Contains(err.Error(), `service "web": privileged`) || !strings.Contains(err.Error(), `"baseline"`) || !strings.Contains(err.Error(), "compose.yaml:5") {
		t.Errorf("privileged: %v (status %d), want 403 naming file:line, service and key", err, apiStatus(err))
	}
	if l, _ := f.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Errorf("a refused apply left namespaces: %v", l.Items)
	}
	if log := f.audit.String(); !strings.Contains(log, "action=envs.apply env=shop status=403") {
		t.Errorf("no audit line for the refusal:\n%s", log)
	}
}

// TestOtherUsersEnvIsNotFound: bob gets 404 for alice's environment on every route, as for one
// that does not exist; alice's heartbeat from another session is 409.
func TestOtherUsersEnvIsNotFound(t *testing.T) {
	f := newFixture(t, HandlerOptions{})
	ctx := context.Background()
	alice, bob := f.client(t, f.token(t, "alice")), f.client(t, f.token(t, "bob"))
	ns, err := f.tenancy.EnsureNamespace(ctx, "alice", "shop")
	if err != nil {
		t.Fatal(err)
	}
	rb, err := f.kube.RbacV1().RoleBindings(ns).Get(ctx, ServiceName, metav1.GetOptions{})
	if err != nil || rb.RoleRef.Name != EnvRoleName || rb.Subjects[0].Name != ServiceName || rb.Subjects[0].Namespace != "ergomake-system" {
		t.Errorf("the server's RoleBinding in %s: %+v, %v", ns, rb, err)
	}
	u := envObject(ns, "shop", v1alpha1.PhaseReady)
	sess := v1alpha1.Session{ID: "s1", User: "alice", Host: "laptop", PID: 42}
	u.SetAnnotations(map[string]string{v1alpha1.AnnotationSession: sess.Annotation(), v1alpha1.AnnotationHeartbeat: time.Now().UTC().Format(time.RFC3339Nano)})
	if _, err := f.tenancy.Dynamic.Resource(v1alpha1.GroupVersionResource).Namespace(ns).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env, err := alice.GetEnv(ctx, "shop")
	if err != nil || env.Name != "shop" || env.Namespace != ns {
		t.Fatalf("alice's GetEnv = %+v, %v", env, err)
	}
	if err := alice.Heartbeat(ctx, "shop", "s1"); err != nil {
		t.Errorf("alice's heartbeat: %v", err)
	}
	if err := alice.Heartbeat(ctx, "shop", "s2"); apiStatus(err) != http.StatusConflict {
		t.Errorf("a heartbeat of another session: %v, want 409", err)
	}
	// A forward (no session) keeps alice's environment alive, whoever holds it; it detaches
	// nothing.
	if err := alice.ForwardHeartbeat(ctx, "shop"); err != nil {
		t.Errorf("alice's forward heartbeat: %v", err)
	}
	if err := alice.Detach(ctx, "shop", "", time.Hour); apiStatus(err) != http.StatusBadRequest {
		t.Errorf("a detach without a session: %v, want 400", err)
	}
	checks := map[string]error{}
	checks["forward heartbeat"] = bob.ForwardHeartbeat(ctx, "shop")
	_, checks["get"] = bob.GetEnv(ctx, "shop")
	checks["watch"] = bob.WatchEnv(ctx, "shop", func(WatchEvent) error { return nil })
	checks["heartbeat"] = bob.Heartbeat(ctx, "shop", "s1")
	checks["detach"] = bob.Detach(ctx, "shop", "s1", time.Hour)
	_, checks["delete"] = bob.DeleteEnvWait(ctx, "shop")
	for what, err := range checks {
		if apiStatus(err) != http.StatusNotFound || !strings.Contains(err.Error(), `no environment "shop"`) {
			t.Errorf("bob's %s of alice's environment: %v (status %d), want 404", what, err, apiStatus(err))
		}
	}
	if _, err := bob.GetEnv(ctx, "Bad/Name"); apiStatus(err) != http.StatusBadRequest && apiStatus(err) != http.StatusNotFound {
		t.Errorf("a bad name: %v", err)
	}
}

// TestInUse: another session whose heartbeat is fresh holds the environment; a stale one, the
// same session, or none do not.
func TestInUse(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	env := func(id string, beat time.Duration) *v1alpha1.ErgomakeEnv {
		s := v1alpha1.Session{ID: id, User: "alice", Host: "laptop", PID: 7, StartedAt: metav1.NewTime(now.Add(-time.Hour)),
			HeartbeatEvery: metav1.Duration{Duration: 10 * time.Second}}
		return &v1alpha1.ErgomakeEnv{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
			v1alpha1.AnnotationSession: s.Annotation(), v1alpha1.AnnotationHeartbeat: now.Add(-beat).Format(time.RFC3339Nano)}}}
	}
	if msg := inUse(env("other", 5*time.Second), "me", "shop", now); !strings.Contains(msg, "alice is attached") || !strings.Contains(msg, "2026-12-04 11:00:00 UTC") || !strings.Contains(msg, "last heartbeat 5s ago") {
		t.Errorf("fresh other session: %q", msg)
	}
	for name, e := range map[string]*v1alpha1.ErgomakeEnv{"stale": env("other", 31*time.Second), "same": env("me", time.Second), "none": {}, "nil": nil} {
		if msg := inUse(e, "me", "shop", now); msg != "" {
			t.Errorf("%s: in use: %q", name, msg)
		}
	}
}

// TestApplyPullSecrets: the pull secrets of the user's registry (up --registry through the
// server) become Secrets of type dockerconfigjson in the environment's namespace; a name outside
// ergomake-pull-*, or content that is no docker config with credentials, is 400 and nothing is
// created.
func TestApplyPullSecrets(t *testing.T) {
	cfg := []byte(`{"auths":{"registry.example.com":{"auth":"dTpw"}}}`)
	got, err := pullSecrets(map[string][]byte{"ergomake-pull-registry.example.com": cfg}, "ergomake-alice-shop")
	if err != nil || len(got) != 1 {
		t.Fatalf("pullSecrets = %v, %v", got, err)
	}
	if s := got[0]; s.Name != "ergomake-pull-registry.example.com" || s.Namespace != "ergomake-alice-shop" ||
		s.Type != corev1.SecretTypeDockerConfigJson || string(s.Data[corev1.DockerConfigJsonKey]) != string(cfg) {
		t.Errorf("secret %+v", s)
	}

	f := newFixture(t, HandlerOptions{})
	ctx := context.Background()
	c := f.client(t, f.token(t, "alice"))
	for name, tc := range map[string]struct {
		secrets map[string][]byte
		want    string
	}{
		"a project's secret name": {map[string][]byte{"token": cfg}, `its name must start with "ergomake-pull-"`},
		"not a name":              {map[string][]byte{"ergomake-pull-A_B": cfg}, "RFC 1123"},
		"not JSON":                {map[string][]byte{"ergomake-pull-r": []byte("{")}, "not a docker config"},
		"no credentials":          {map[string][]byte{"ergomake-pull-r": []byte(`{"auths":{}}`)}, "no auths"},
	} {
		req := applyRequest(t, map[string]string{"compose.yaml": "name: shop\nservices:\n  web:\n    image: nginx\n"}, "s1")
		req.PullSecrets = tc.secrets
		if _, err := c.Apply(ctx, req); apiStatus(err) != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (status %d), want 400 saying %q", name, err, apiStatus(err), tc.want)
		}
	}
	if l, _ := f.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); len(l.Items) != 0 {
		t.Errorf("a refused apply left namespaces: %v", l.Items)
	}
}
