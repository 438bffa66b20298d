package install

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

// find returns the object of that kind and name, failing the test when there is none.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

func podSpec(t *testing.T, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	spec, ok, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
	if !ok {
		t.Fatalf("%s %s has no pod template", o.GetKind(), o.GetName())
	}
	return spec
}

func container(t *testing.T, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs := podSpec(t, o)["containers"].([]any)
	if len(cs) != 1 {
		t.Fatalf("%s %s: %d containers", o.GetKind(), o.GetName(), len(cs))
	}
	return cs[0].(map[string]any)
}

func TestRegistryObjects(t *testing.T) {
	objs, err := Objects(Options{Image: "ergomake.test/ergomake-operator:dev", RegistryImage: "ergomake.test/ergomake-registry:dev", Namespace: "ops", RelayPort: 5200,
		Revision: "op1", RegistryRevision: "reg1"})
	if err != nil {
		t.Fatal(err)
	}
	d := find(t, objs, "Deployment", RegistryName)
	c := container(t, d)
	if c["image"] != "ergomake.test/ergomake-registry:dev" {
		t.Errorf("registry image %v", c["image"])
	}
	if args := c["args"].([]any); len(args) != 2 || args[0] != "serve" || args[1] != "/etc/distribution/config.yml" {
		t.Errorf("registry args %v", args)
	}
	spec := podSpec(t, d)
	if spec["automountServiceAccountToken"] != false || spec["serviceAccountName"] != nil {
		t.Errorf("the registry gets an API token or a service account: %v", spec)
	}
	volumes := spec["volumes"].([]any)
	if claim, _, _ := unstructured.NestedString(volumes[1].(map[string]any), "persistentVolumeClaim", "claimName"); claim != RegistryName {
		t.Errorf("storage volume %v", volumes[1])
	}
	revision := func(o *unstructured.Unstructured) string {
		r, _, _ := unstructured.NestedString(o.Object, "spec", "template", "metadata", "annotations", AnnotationRevision)
		return r
	}
	if r := revision(d); r != "reg1" {
		t.Errorf("registry revision %q", r)
	}
	if r, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); fmt.Sprint(r) != "1" {
		t.Errorf("replicas %v", r)
	}

	// the registry's configuration listens where the Service sends, stores under the mounted volume
	cm := find(t, objs, "ConfigMap", RegistryName)
	conf, _, _ := unstructured.NestedString(cm.Object, "data", "config.yml")
	for _, want := range []string{"addr: :5000", "rootdirectory: /var/lib/registry", "storagedriver:"} {
		if !strings.Contains(conf, want) {
			t.Errorf("registry config lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "auth:") || strings.Contains(conf, "proxy:") || strings.Contains(conf, "notifications:") {
		t.Errorf("registry config points somewhere or asks for auth:\n%s", conf)
	}
	svc := find(t, objs, "Service", RegistryName)
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if p := ports[0].(map[string]any); fmt.Sprint(p["port"]) != fmt.Sprint(RegistryPort) || p["targetPort"] != "registry" {
		t.Errorf("registry Service port %v", p)
	}
	if typ, _, _ := unstructured.NestedString(svc.Object, "spec", "type"); typ != "ClusterIP" {
		t.Errorf("registry Service type %q", typ)
	}

	ds := find(t, objs, "DaemonSet", RelayName)
	rc := container(t, ds)
	if rc["image"] != "ergomake.test/ergomake-operator:dev" {
		t.Errorf("relay image %v (want the operator's)", rc["image"])
	}
	args := rc["args"].([]any)
	want := []any{"registry-relay", "--listen=127.0.0.1:5200", "--upstream=ergomake-registry.ops.svc:5000"}
	if len(args) != len(want) {
		t.Fatalf("relay args %v", args)
	}
	for i := range want {
		if args[i] != want[i] {
			t.Errorf("relay args %v\nwant %v", args, want)
			break
		}
	}
	if port, _, _ := unstructured.NestedInt64(rc, "readinessProbe", "tcpSocket", "port"); port != 5200 {
		t.Errorf("relay probe port %d", port)
	}
	if r := revision(ds); r != "op1" {
		t.Errorf("relay revision %q, want the operator's (same image)", r)
	}
	rs := podSpec(t, ds)
	if rs["hostNetwork"] != true || rs["dnsPolicy"] != "ClusterFirstWithHostNet" || rs["automountServiceAccountToken"] != false {
		t.Errorf("relay pod spec %v", rs)
	}
	if sc := rc["securityContext"].(map[string]any); sc["allowPrivilegeEscalation"] != false {
		t.Errorf("relay security context %v", sc)
	}
	if RelayAddress(0) != "127.0.0.1:5100" {
		t.Errorf("RelayAddress(0) = %s", RelayAddress(0))
	}
}

func TestRegistryObjectsDefaults(t *testing.T) {
	objs, err := Objects(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if img := container(t, find(t, objs, "Deployment", RegistryName))["image"].(string); !strings.HasPrefix(img, RegistryImageRepository+":") {
		t.Errorf("default registry image %s", img)
	}
	if img := container(t, find(t, objs, "DaemonSet", RelayName))["image"].(string); !strings.HasPrefix(img, ImageRepository+":") {
		t.Errorf("default relay image %s", img)
	}
	args := container(t, find(t, objs, "DaemonSet", RelayName))["args"].([]any)
	if args[1] != "--listen=127.0.0.1:5100" || args[2] != "--upstream=ergomake-registry.ergomake-system.svc:5000" {
		t.Errorf("default relay args %v", args)
	}
	for _, bad := range []Options{{RelayPort: 70000}, {RelayPort: -1}, {RegistryStorage: "s3"}} {
		if _, err := Objects(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestRegistryEmptyDir(t *testing.T) {
	objs, err := Objects(Options{RegistryStorage: StorageEmptyDir})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "PersistentVolumeClaim" && o.GetName() == RegistryName {
			t.Errorf("a PVC with emptyDir storage: %s", o.GetName())
		}
	}
	volumes := podSpec(t, find(t, objs, "Deployment", RegistryName))["volumes"].([]any)
	v := volumes[1].(map[string]any)
	if _, ok := v["emptyDir"]; !ok || v["name"] != "storage" || v["persistentVolumeClaim"] != nil {
		t.Errorf("storage volume %v", v)
	}
}

func TestResolveStorage(t *testing.T) {
	scheme, err := newScheme() // install's own: a type it reads must be in it
	if err != nil {
		t.Fatal(err)
	}
	class := func(name string, isDefault bool) *storagev1.StorageClass {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "example.com/disk"}
		if isDefault {
			sc.Annotations = map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}
		}
		return sc
	}
	for _, tc := range []struct {
		name    string
		classes []*storagev1.StorageClass
		given   Storage
		want    Storage
		warn    bool
	}{
		{"no classes", nil, StorageAuto, StorageEmptyDir, true},
		{"no default class", []*storagev1.StorageClass{class("slow", false)}, StorageAuto, StorageEmptyDir, true},
		{"a default class", []*storagev1.StorageClass{class("slow", false), class("standard", true)}, StorageAuto, StoragePVC, false},
		{"told emptyDir", []*storagev1.StorageClass{class("standard", true)}, StorageEmptyDir, StorageEmptyDir, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(scheme)
			for _, sc := range tc.classes {
				b = b.WithObjects(sc)
			}
			var out bytes.Buffer
			opts := Options{RegistryStorage: tc.given, Out: &out}
			if err := resolveStorage(context.Background(), b.Build(), &opts); err != nil {
				t.Fatal(err)
			}
			if opts.RegistryStorage != tc.want {
				t.Errorf("storage %q, want %q", opts.RegistryStorage, tc.want)
			}
			wantBuilder := tc.want
			if tc.given != StorageAuto {
				wantBuilder = StoragePVC // the class is there: only the registry was told emptyDir
			}
			if opts.BuilderStorage != wantBuilder {
				t.Errorf("builder storage %q, want %q", opts.BuilderStorage, wantBuilder)
			}
			if warned := strings.Contains(out.String(), "no default StorageClass"); warned != tc.warn {
				t.Errorf("warning %v, want %v: %q", warned, tc.warn, out.String())
			}
		})
	}
}

func TestDaemonSetRolledOut(t *testing.T) {
	ds := func(gen, observed int64, desired, updated, available int32) *appsv1.DaemonSet {
		d := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: gen}}
		d.Status = appsv1.DaemonSetStatus{ObservedGeneration: observed, DesiredNumberScheduled: desired, UpdatedNumberScheduled: updated, NumberAvailable: available}
		return d
	}
	for _, tc := range []struct {
		ds   *appsv1.DaemonSet
		done bool
		msg  string
	}{
		{ds(2, 1, 1, 1, 1), false, "waiting for the rollout to start"},
		{ds(2, 2, 3, 1, 1), false, "1 of 3 nodes updated"},
		{ds(2, 2, 3, 3, 2), false, "2 of 3 nodes available"},
		{ds(2, 2, 3, 3, 3), true, "available"},
	} {
		done, msg := daemonSetRolledOut(tc.ds)
		if done != tc.done || msg != tc.msg {
			t.Errorf("%+v: %v %q, want %v %q", tc.ds.Status, done, msg, tc.done, tc.msg)
		}
	}
}
