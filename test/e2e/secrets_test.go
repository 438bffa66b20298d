//go:build e2e

package e2e

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/internal/testutil/tree"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestSecretsStaySecret (issue 11, decision 15) brings up a project whose service has values in
// environment and env_file and bind-mounts a folder with a private file, and checks: the container
// sees every value as compose would give it (environment over env_file, $$ as $); the
// ErgomakeEnv, as `kubectl get -o yaml` prints it, holds none of the values; the private file
// arrives, mounted from a Secret, and no ConfigMap holds it; `ergomake render` shows none.
func TestSecretsStaySecret(t *testing.T) {
	t.Parallel()
	tag := rand.String(8)
	inline, fromFile, private := "inline-"+tag, "envfile-"+tag, "private-"+tag
	p := newUpProject(t, "e2e-secrets", `
services:
  app:
    image: ergomake.test/testapp:latest
    env_file: app.env
    environment:
      SERVICE: app
      PORTS: "8080"
      API_TOKEN: `+inline+`
      OVERRIDE: from-environment
      DOLLAR: "pa$$word-`+tag+`"
    volumes:
      - ./conf:/conf:ro
`)
	write := func(name, content string, mode os.FileMode) {
		t.Helper()
		tree.File(t, filepath.Join(p.dir, name), content, mode)
	}
	write("app.env", "FROM_FILE="+fromFile+"\nOVERRIDE=from-env-file\n", 0o644)
	write("conf/app.conf", "public=1\n", 0o644)
	write("conf/.env.production", "DB_PASSWORD="+private+"\n", 0o600)
	values := []string{inline, fromFile, private, "word-" + tag}

	// render never shows them
	stdout, stderr, code := p.run(time.Minute, "render")
	if code != 0 {
		t.Fatalf("render exited %d: %s", code, stderr)
	}
	checkNoValues(t, "ergomake render", stdout+stderr, values)

	stdout, stderr = p.upDetached(4*time.Minute, "--wait-timeout", "3m")
	checkNoValues(t, "ergomake up", stdout+stderr, values)

	// inside the container: the values, with compose's rules
	out, errOut, code := p.execRun(nil, time.Minute, "exec", "-T", "app", "sh", "-c",
		`printf '%s|%s|%s|%s' "$API_TOKEN" "$FROM_FILE" "$OVERRIDE" "$DOLLAR"; echo; cat /conf/.env.production /conf/app.conf`)
	if code != 0 {
		t.Fatalf("exec exited %d: %s", code, errOut)
	}
	want := inline + "|" + fromFile + "|from-environment|pa$word-" + tag + "\nDB_PASSWORD=" + private + "\npublic=1\n"
	if out != want {
		t.Errorf("in the container:\n%q\nwant\n%q", out, want)
	}

	// the ErgomakeEnv as kubectl prints it holds none of them
	kubectl := filepath.Join(cluster.Dir(), "bin", "kubectl")
	yaml, err := exec.Command(kubectl, "--kubeconfig", p.kubecfg, "-n", p.ns, "get", "ergomakeenv", p.name, "-o", "yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get: %v: %s", err, yaml)
	}
	checkNoValues(t, "kubectl get ergomakeenv -o yaml", string(yaml), values)
	if !strings.Contains(string(yaml), "envSecret: env-app") || !strings.Contains(string(yaml), "secretKey: API_TOKEN") {
		t.Errorf("the ErgomakeEnv does not reference its Secret:\n%s", yaml)
	}

	// the private file came through a Secret, owned by the environment; no ConfigMap holds it
	ctx := context.Background()
	pods := p.servicePods("app")
	if len(pods) == 0 {
		t.Fatal("no pod of app")
	}
	var secretName string
	for _, m := range pods[0].Spec.Containers[0].VolumeMounts {
		if m.MountPath != "/conf" {
			continue
		}
		for _, v := range pods[0].Spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				secretName = v.Secret.SecretName
			}
		}
	}
	if secretName == "" {
		t.Fatalf("/conf is not mounted from a Secret: %+v", pods[0].Spec.Volumes)
	}
	env, err := p.dyn.Resource(v1alpha1.GroupVersionResource).Namespace(p.ns).Get(ctx, p.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{secretName, "env-app"} {
		s, err := p.cs.CoreV1().Secrets(p.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != env.GetUID() {
			t.Errorf("Secret %s is not owned by the environment: %+v", name, s.OwnerReferences)
		}
	}
	cms, err := p.cs.CoreV1().ConfigMaps(p.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		for k, v := range cm.Data {
			checkNoValues(t, "ConfigMap "+cm.Name+" key "+k, v, values)
		}
	}

	// up again: unchanged values restart nothing; a changed env_file value reaches a new pod
	before := pods[0].UID
	p.upDetached(4*time.Minute, "--wait-timeout", "3m")
	if now := p.servicePods("app"); len(now) != 1 || now[0].UID != before {
		t.Errorf("an up with unchanged values replaced the pod")
	}
	write("app.env", "FROM_FILE=changed-"+tag+"\nOVERRIDE=from-env-file\n", 0o644)
	p.upDetached(4*time.Minute, "--wait-timeout", "3m")
	cluster.Eventually(t, 2*time.Minute, time.Second, "the changed value reaches the container", func(ctx context.Context) (bool, string, error) {
		out, _, code := p.execRun(nil, time.Minute, "exec", "-T", "app", "sh", "-c", `printf '%s' "$FROM_FILE"`)
		return code == 0 && out == "changed-"+tag, out, nil
	})

	if stdout, stderr, code := p.run(3*time.Minute, "down"); code != 0 {
		t.Fatalf("down exited %d\n%s\n%s", code, stdout, stderr)
	}
	cluster.Eventually(t, time.Minute, time.Second, "the Secrets are removed with the environment", func(ctx context.Context) (bool, string, error) {
		l, err := p.cs.CoreV1().Secrets(p.ns).List(ctx, metav1.ListOptions{LabelSelector: v1alpha1.LabelEnv + "=" + p.name})
		if err != nil {
			return true, "", nil // the namespace is gone too
		}
		return len(l.Items) == 0, strings.Repeat("secret ", len(l.Items)), nil
	})
}

// checkNoValues fails the test when text holds any of values, as is or base64-encoded.
func checkNoValues(t *testing.T, what, text string, values []string) {
	t.Helper()
	for _, v := range values {
		if strings.Contains(text, v) || strings.Contains(text, base64.StdEncoding.EncodeToString([]byte(v))) {
			t.Errorf("%s shows the value %q", what, v)
		}
	}
}
