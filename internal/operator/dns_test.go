package operator

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func TestDNSServerLookup(t *testing.T) {
	ctx := context.Background()
	var none *DNSServerLookup
	if ip := none.ServerIP(ctx); ip != "" {
		t.Errorf("nil lookup: %q", ip)
	}
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	clk := clocktesting.NewFakeClock(time.Now())
	d := &DNSServerLookup{Reader: c, Key: types.NamespacedName{Namespace: "ergomake-system", Name: "ergomake-dns"}, Clock: clk}
	if ip := d.ServerIP(ctx); ip != "" {
		t.Errorf("no Service: %q", ip)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ergomake-system", Name: "ergomake-dns"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.53"},
	}
	if err := c.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if ip := d.ServerIP(ctx); ip != "" {
		t.Errorf("remembered answer changed before a minute: %q", ip)
	}
	clk.Step(dnsServiceRefresh)
	if ip := d.ServerIP(ctx); ip != "10.96.0.53" {
		t.Errorf("after a minute: %q", ip)
	}
}

func TestDNSServiceKey(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	if k := dnsServiceKey(Options{}); k.String() != "ergomake-system/ergomake-dns" {
		t.Errorf("default: %s", k)
	}
	t.Setenv("POD_NAMESPACE", "ops")
	if k := dnsServiceKey(Options{}); k.String() != "ops/ergomake-dns" {
		t.Errorf("POD_NAMESPACE: %s", k)
	}
	if k := dnsServiceKey(Options{DNSNamespace: "x"}); k.String() != "x/ergomake-dns" {
		t.Errorf("DNSNamespace: %s", k)
	}
}

// A Deployment rendered before the environment DNS was known is not up to date once it is.
func TestDeploymentUpToDateDNS(t *testing.T) {
	env := &v1alpha1.ErgomakeEnv{
		ObjectMeta: metav1.ObjectMeta{Name: "names", Namespace: "ns"},
		Spec: v1alpha1.EnvSpec{Project: "names", Services: []v1alpha1.ServiceSpec{
			{Name: "web_app", ServiceName: "web-app", Image: "x"},
		}},
	}
	before, err := render.Render(env, render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := render.Render(env, render.Options{DNSServer: "10.96.0.53"})
	if err != nil {
		t.Fatal(err)
	}
	existing := before.Services[0].Deployment.DeepCopy()
	existing.OwnerReferences = []metav1.OwnerReference{{Controller: ptrBool(true)}}
	if !deploymentUpToDate(existing, &before.Services[0]) {
		t.Fatal("same render not up to date")
	}
	if deploymentUpToDate(existing, &after.Services[0]) {
		t.Error("the environment DNS did not make the Deployment out of date")
	}
}
