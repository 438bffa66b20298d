//go:build e2e

package render_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestRenderedEnvironmentRuns runs a rendered environment of the test image on the local cluster
// and checks, from inside the pods, what render promises: a CMD-SHELL healthcheck makes the pod
// ready; a peer reaches a service by its Service name, by an alias Service and by a non-DNS-1035
// alias through hostAliases; '$' survives Kubernetes' $(VAR) expansion in args, env and probes;
// secrets and configs are files at their targets; tmpfs, shm and emptyDir mounts are writable;
// one-shot services complete as Jobs.
func TestRenderedEnvironmentRuns(t *testing.T) {
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	c, err := client.New(cfg, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := cluster.Namespace(t, cs, "render-run")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	const img = cluster.TestImage
	hc := func(cmd string) *v1alpha1.Healthcheck {
		return &v1alpha1.Healthcheck{Exec: []string{"/bin/sh", "-c", cmd},
			Interval: metav1.Duration{Duration: time.Second}, Timeout: metav1.Duration{Duration: 2 * time.Second}, Retries: 3}
	}
	shm := resource.MustParse("64Mi")
	env := &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: "run", Namespace: ns},
		Spec: v1alpha1.EnvSpec{
			Project: "run",
			Volumes: []v1alpha1.VolumeSpec{{Name: "scratch", ClaimName: "run-scratch", EmptyDir: true}},
			Services: []v1alpha1.ServiceSpec{
				{
					// backend: answers as backend, api and store.internal; its probe needs $PORT
					// to reach the shell unexpanded by Kubernetes.
					Name: "backend", ServiceName: "backend", Image: img,
					Aliases:     []string{"api", "store.internal"},
					Environment: []v1alpha1.EnvVar{{Name: "SERVICE", Value: "backend"}, {Name: "PORTS", Value: "8080"}, {Name: "PORT", Value: "8080"}},
					Ports:       []v1alpha1.PortSpec{{Name: "http", Target: 8080, Published: "8080", Publish: true}},
					Healthcheck: hc(`/testapp probe "http://localhost:$PORT/healthz"`),
				},
				{
					// check: a one-shot service that verifies '$' handling, files and mounts.
					Name: "check", ServiceName: "check", Image: img, Lifecycle: v1alpha1.OneShot,
					Entrypoint: []string{"/bin/sh", "-c"},
					Command: []string{strings.Join([]string{
						`test "$LITERAL" = "$(printf '\044(NAME)')"`,
						`test "$GREETING" = "hello $(printf '\044')NAME"`,
						`test "$(cat /run/secrets/token)" = 's3cret$(NAME)'`,
						`test "$(cat /etc/app/app.conf)" = 'level=debug'`,
						`touch /tmp/x /dev/shm/x /scratch/x /cache/x`,
						`echo checked`,
					}, " && ")},
					Environment: []v1alpha1.EnvVar{
						{Name: "NAME", Value: "world"},
						{Name: "LITERAL", Value: "$(NAME)"},
						{Name: "GREETING", Value: "hello $NAME"},
					},
					Secrets: []v1alpha1.FileMount{{Name: "token", Object: "run-secrets", Key: "token", Target: "/run/secrets/token", Mode: ptr.To(int32(0o444))}},
					Configs: []v1alpha1.FileMount{{Name: "app", Object: "run-configs", Key: "app", Target: "/etc/app/app.conf"}},
					Volumes: []v1alpha1.VolumeMount{
						{Type: v1alpha1.MountTmpfs, Target: "/tmp"},
						{Type: v1alpha1.MountVolume, Source: "scratch", Target: "/scratch"},
						{Type: v1alpha1.MountEmptyDir, Target: "/cache"},
					},
					ShmSize: &shm,
				},
				{
					// client: reaches backend under each of its names.
					Name: "client", ServiceName: "client", Image: img, Lifecycle: v1alpha1.OneShot,
					Restart: "on-failure", MaxRetries: ptr.To(int32(20)),
					Entrypoint: []string{"/bin/sh", "-c"},
					Command: []string{`for u in http://backend:8080/ http://api:8080/ http://store.internal:8080/; do ` +
						`/testapp probe "$u" || { echo "cannot reach $u"; sleep 1; exit 1; }; done`},
					DependsOn: []v1alpha1.Dependency{{Service: "backend", Condition: v1alpha1.ServiceHealthy, Required: true}},
				},
			},
		},
	}

	objs, err := render.Render(env, render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ips := map[string]string{}
	for i := range objs.Services {
		for _, s := range objs.Services[i].Services {
			if err := c.Create(ctx, s); err != nil {
				t.Fatalf("creating Service %s: %v", s.Name, err)
			}
			ips[s.Name] = s.Spec.ClusterIP
		}
	}
	if objs, err = render.Render(env, render.Options{ClusterIPs: ips}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "run-secrets", Namespace: ns}, StringData: map[string]string{"token": "s3cret$(NAME)"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "run-configs", Namespace: ns}, Data: map[string]string{"app": "level=debug"}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	for _, cl := range objs.Claims {
		if err := c.Create(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	for i := range objs.Services {
		if err := c.Create(ctx, objs.Services[i].Workload()); err != nil {
			t.Fatalf("creating the workload of %s: %v", objs.Services[i].Name, err)
		}
	}

	cluster.WaitDeploymentReady(t, cs, ns, "backend", 2*time.Minute)
	for _, job := range []string{"check", "client"} {
		cluster.Eventually(t, 2*time.Minute, 500*time.Millisecond, "job "+job+" complete", func(ctx context.Context) (bool, string, error) {
			j, err := cs.BatchV1().Jobs(ns).Get(ctx, job, metav1.GetOptions{})
			if err != nil {
				return false, err.Error(), nil
			}
			for _, cond := range j.Status.Conditions {
				if cond.Status != corev1.ConditionTrue {
					continue
				}
				switch cond.Type {
				case batchv1.JobComplete:
					return true, "", nil
				case batchv1.JobFailed:
					return false, "", fmt.Errorf("job %s failed: %s", job, cond.Message)
				}
			}
			return false, fmt.Sprintf("active %d, failed %d", j.Status.Active, j.Status.Failed), nil
		})
	}
}
