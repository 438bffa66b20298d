package install

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	toml "github.com/pelletier/go-toml/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// buildkitdTOML parses the builder ConfigMap's buildkitd.toml.
func buildkitdTOML(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	text, _, _ := unstructured.NestedString(find(t, objs, "ConfigMap", BuilderName).Object, "data", "buildkitd.toml")
	var m map[string]any
	if err := toml.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("buildkitd.toml does not parse: %v\n%s", err, text)
	}
	return m
}

func TestBuilderObjectsPrivileged(t *testing.T) {
	objs, err := Objects(Options{Namespace: "ops", BuilderImage: "ergomake.test/ergomake-builder:dev", BuilderRevision: "b1",
		BuilderMirrors: []string{"ergomake.test", "docker.io"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "Service" && strings.Contains(o.GetName(), "builder") {
			t.Errorf("the builder is exposed by Service %s: it must listen on its pod's loopback only", o.GetName())
		}
	}
	d := find(t, objs, "Deployment", BuilderName)
	if d.GetNamespace() != "ops" {
		t.Errorf("namespace %q", d.GetNamespace())
	}
	c := container(t, d)
	if c["image"] != "ergomake.test/ergomake-builder:dev" {
		t.Errorf("image %v", c["image"])
	}
	args := fmt.Sprint(c["args"])
	if args != "[--addr tcp://127.0.0.1:1234 --config /etc/buildkit/buildkitd.toml --root /var/lib/buildkit]" {
		t.Errorf("args %s", args)
	}
	if sc := c["securityContext"].(map[string]any); sc["privileged"] != true {
		t.Errorf("securityContext %v", sc)
	}
	probe := fmt.Sprint(c["readinessProbe"].(map[string]any)["exec"])
	if !strings.Contains(probe, "tcp://127.0.0.1:1234") {
		t.Errorf("the readiness probe does not check the loopback port: %s", probe)
	}
	spec := podSpec(t, d)
	if spec["hostNetwork"] != nil || spec["automountServiceAccountToken"] != false {
		t.Errorf("pod spec %v", spec)
	}
	if claim, _, _ := unstructured.NestedString(spec["volumes"].([]any)[1].(map[string]any), "persistentVolumeClaim", "claimName"); claim != BuilderName {
		t.Errorf("cache volume %v", spec["volumes"])
	}
	if r, _, _ := unstructured.NestedString(d.Object, "spec", "template", "metadata", "annotations", AnnotationRevision); r != "b1" {
		t.Errorf("revision %q", r)
	}
	find(t, objs, "PersistentVolumeClaim", BuilderName)

	conf := buildkitdTOML(t, objs)
	reg := conf["registry"].(map[string]any)
	want := map[string]any{
		"ergomake-registry.ops.svc:5000": map[string]any{"http": true},
		"docker.io":                      map[string]any{"mirrors": []any{"ergomake-registry.ops.svc:5000"}},
		"ergomake.test":                  map[string]any{"mirrors": []any{"ergomake-registry.ops.svc:5000/ergomake.test"}},
	}
	if !reflect.DeepEqual(reg, want) {
		t.Errorf("registries %v\nwant       %v", reg, want)
	}
	if oci, _ := conf["worker"].(map[string]any)["oci"].(map[string]any); oci["enabled"] != true {
		t.Errorf("worker %v", conf["worker"])
	}
}

func TestBuilderObjectsRootless(t *testing.T) {
	objs, err := Objects(Options{BuilderMode: BuilderRootless, BuilderStorage: StorageEmptyDir})
	if err != nil {
		t.Fatal(err)
	}
	d := find(t, objs, "Deployment", BuilderName)
	c := container(t, d)
	if c["image"] != DefaultRootlessBuilderImage {
		t.Errorf("image %v", c["image"])
	}
	args := c["args"].([]any)
	if fmt.Sprint(args) != "[--addr tcp://127.0.0.1:1234 --config /etc/buildkit/buildkitd.toml --root "+rootlessState+" --oci-worker-no-process-sandbox]" {
		t.Errorf("args %v", args)
	}
	sc := c["securityContext"].(map[string]any)
	want := map[string]any{"runAsUser": int64(1000), "runAsGroup": int64(1000), "allowPrivilegeEscalation": true,
		"seccompProfile": map[string]any{"type": "Unconfined"}, "appArmorProfile": map[string]any{"type": "Unconfined"}}
	if !reflect.DeepEqual(sc, want) {
		t.Errorf("securityContext %v", sc)
	}
	for _, m := range c["volumeMounts"].([]any) {
		if mm := m.(map[string]any); mm["name"] == "cache" && mm["mountPath"] != rootlessState {
			t.Errorf("cache mounted at %v", mm["mountPath"])
		}
	}
	spec := podSpec(t, d)
	if fs, _, _ := unstructured.NestedInt64(spec, "securityContext", "fsGroup"); fs != 1000 {
		t.Errorf("fsGroup %d", fs)
	}
	if v := spec["volumes"].([]any)[1].(map[string]any); v["name"] != "cache" || v["emptyDir"] == nil {
		t.Errorf("cache volume %v", v)
	}
	for _, o := range objs {
		if o.GetKind() == "PersistentVolumeClaim" && o.GetName() == BuilderName {
			t.Error("a builder PVC with emptyDir storage")
		}
	}
}

func TestBuilderDefaultsAndNone(t *testing.T) {
	objs, err := Objects(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if img := container(t, find(t, objs, "Deployment", BuilderName))["image"]; img != DefaultBuilderImage {
		t.Errorf("default image %v", img)
	}
	if reg := buildkitdTOML(t, objs)["registry"].(map[string]any); len(reg) != 1 {
		t.Errorf("mirrors without --builder-mirror: %v", reg)
	}

	objs, err = Objects(Options{BuilderMode: BuilderNone})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetName() == BuilderName {
			t.Errorf("builder mode none, yet %s %s", o.GetKind(), o.GetName())
		}
	}
	for _, bad := range []Options{{BuilderMode: "sudo"}, {BuilderStorage: "s3"}, {BuilderMirrors: []string{"https://docker.io"}},
		{BuilderMirrors: []string{"docker.io/library"}}, {BuilderMirrors: []string{"reg:99999"}}, {PodSecurity: "lax"}} {
		if _, err := Objects(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if err := ValidMirrorHost("registry.example.com:5000"); err != nil {
		t.Error(err)
	}
}

func TestPodsRefused(t *testing.T) {
	msg := `pods "ergomake-builder-1" is forbidden: violates PodSecurity "baseline:latest": privileged (container "buildkitd" must not set securityContext.privileged=true)`
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: BuilderName, Namespace: DefaultNamespace, Generation: 1},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetCreated"},
			{Type: appsv1.DeploymentReplicaFailure, Status: corev1.ConditionTrue, Reason: "FailedCreate", Message: msg},
		}},
	}
	scheme, err := newScheme() // install's own: a type it reads must be in it
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(d).WithStatusSubresource(d).Build()
	var out bytes.Buffer
	opts := Options{Namespace: DefaultNamespace, Timeout: time.Minute, Out: &out}
	start := time.Now()
	err = waitAvailable(context.Background(), c, opts, workload{what: "builder", kind: "Deployment", name: BuilderName, hint: builderRefusedHint(DefaultNamespace, BuilderPrivileged)})
	if err == nil {
		t.Fatal("no error for refused pods")
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("waited %s for pods the cluster refuses", time.Since(start))
	}
	got := err.Error()
	// Pod Security baseline refuses the rootless builder too (seccomp and AppArmor Unconfined)
	if strings.Contains(got, "\n") || !strings.Contains(got, "refuses") || !strings.Contains(got, "violates PodSecurity") ||
		strings.Contains(got, "--builder-mode rootless") || !strings.Contains(got, "pod-security.kubernetes.io/enforce=privileged") ||
		!strings.Contains(got, "--registry") {
		t.Errorf("error %q", got)
	}
	if podsRefused(&appsv1.Deployment{}) != "" {
		t.Error("refused without a ReplicaFailure condition")
	}
	// refused by something else (a policy engine against privileged pods): rootless may pass
	webhook := `admission webhook "validate.kyverno.svc" denied the request: privileged containers are not allowed`
	if h := builderRefusedHint(DefaultNamespace, BuilderPrivileged)(webhook); !strings.Contains(h, "--builder-mode rootless") {
		t.Errorf("hint %q", h)
	}
	if h := builderRefusedHint(DefaultNamespace, BuilderRootless)(webhook); strings.Contains(h, "--builder-mode rootless") {
		t.Errorf("rootless refused, and the hint suggests rootless: %q", h)
	}
}
