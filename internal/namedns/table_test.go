package namedns

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func envOf(ns, name string, services ...v1alpha1.ServiceSpec) *v1alpha1.ErgomakeEnv {
	return &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1alpha1.EnvSpec{Project: name, Services: services},
	}
}

func serviceOf(env *v1alpha1.ErgomakeEnv, compose, name string, ips ...string) *corev1.Service {
	labels := render.SelectorLabels(env, compose)
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: env.Namespace, Labels: labels},
		Spec:       corev1.ServiceSpec{ClusterIPs: ips},
	}
	if len(ips) > 0 {
		s.Spec.ClusterIP = ips[0]
	}
	return s
}

func podOf(ns, name, ip string, hostNetwork bool, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{v1alpha1.LabelEnv: "x"}},
		Spec:       corev1.PodSpec{HostNetwork: hostNetwork},
		Status:     corev1.PodStatus{Phase: phase, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}

func TestCacheTable(t *testing.T) {
	sch, err := newScheme()
	if err != nil {
		t.Fatal(err)
	}
	shop := envOf("shop", "shop",
		v1alpha1.ServiceSpec{Name: "web_app", ServiceName: "web-app", Image: "x", Aliases: []string{"front_end", "files.web"}},
		v1alpha1.ServiceSpec{Name: "db", ServiceName: "db", Image: "x", Aliases: []string{"db_primary"}},
		v1alpha1.ServiceSpec{Name: "cache_1", ServiceName: "cache-1", Image: "x"},
		v1alpha1.ServiceSpec{Name: "later_svc", ServiceName: "later-svc", Image: "x"},
		v1alpha1.ServiceSpec{Name: "stolen_svc", ServiceName: "stolen-svc", Image: "x"},
	)
	other := envOf("other", "shop", v1alpha1.ServiceSpec{Name: "web_app", ServiceName: "web-app", Image: "x"})
	intruder := envOf("shop", "intruder", v1alpha1.ServiceSpec{Name: "x", ServiceName: "x", Image: "x"})
	c := fake.NewClientBuilder().WithScheme(sch).
		WithIndex(&corev1.Pod{}, PodIPField, PodIPs).
		WithObjects(shop, other,
			serviceOf(shop, "web_app", "web-app", "10.96.0.30"),
			serviceOf(shop, "db", "db", "10.96.1.1", "fd00::1"),
			serviceOf(shop, "cache_1", "cache-1", "None"),
			serviceOf(intruder, "x", "stolen-svc", "10.96.6.6"), // same name, another environment's
			serviceOf(other, "web_app", "web-app", "10.96.9.9"),
			podOf("shop", "a", "10.244.0.5", false, corev1.PodRunning),
			podOf("other", "b", "10.244.0.6", false, corev1.PodRunning),
			podOf("other", "old", "10.244.0.5", false, corev1.PodSucceeded),
			podOf("shop", "host", "10.200.0.1", true, corev1.PodRunning),
		).Build()
	tab := &CacheTable{Reader: c}
	ctx := context.Background()

	for _, tc := range []struct {
		ns, name string
		want     string // "" = not ours
	}{
		{"shop", "web_app", "shop/web-app [10.96.0.30]"},
		{"shop", "WEB_APP", "shop/web-app [10.96.0.30]"},
		{"shop", "front_end", "shop/web-app [10.96.0.30]"},
		{"shop", "files.web", "shop/web-app [10.96.0.30]"}, // hostAliases carry it too; DNS answers anyway
		{"shop", "db_primary", "shop/db [10.96.1.1 fd00::1]"},
		{"shop", "cache_1", "shop/cache-1 []"}, // headless
		{"shop", "later_svc", ""},              // no Service yet
		{"shop", "stolen_svc", ""},             // the Service is not this environment's
		{"shop", "db", ""},                     // cluster DNS answers it
		{"shop", "web-app", ""},                // likewise
		{"shop", "nothing", ""},
		{"other", "web_app", "other/web-app [10.96.9.9]"},
		{"other", "front_end", ""},
		{"elsewhere", "web_app", ""},
	} {
		got := ""
		if tgt, ok := tab.Lookup(ctx, tc.ns, tc.name); ok {
			got = fmt.Sprintf("%s/%s %v", tgt.Namespace, tgt.Service, tgt.IPs)
		}
		if got != tc.want {
			t.Errorf("Lookup(%s, %s) = %q, want %q", tc.ns, tc.name, got, tc.want)
		}
	}

	for ip, want := range map[string]string{
		"10.244.0.5": "shop", // the finished pod of other that had this IP does not count
		"10.244.0.6": "other",
		"10.200.0.1": "", // host network: the node's IP is not a pod's
		"10.244.0.9": "",
	} {
		got, _ := tab.PodNamespace(ctx, netip.MustParseAddr(ip))
		if got != want {
			t.Errorf("PodNamespace(%s) = %q, want %q", ip, got, want)
		}
	}

	// Two live pods of different namespaces claiming one IP: no answer rather than a wrong one.
	if err := c.Create(ctx, podOf("other", "dup", "10.244.0.6", false, corev1.PodPending)); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, podOf("shop", "dup", "10.244.0.6", false, corev1.PodRunning)); err != nil {
		t.Fatal(err)
	}
	if got, ok := tab.PodNamespace(ctx, netip.MustParseAddr("10.244.0.6")); ok {
		t.Errorf("ambiguous IP answered %q", got)
	}
}
