package operator

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func hostsEnv(names ...string) *v1alpha1.ErgomakeEnv {
	env := &v1alpha1.ErgomakeEnv{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"}, Spec: v1alpha1.EnvSpec{Project: "app"}}
	for _, n := range names {
		env.Spec.Services = append(env.Spec.Services, v1alpha1.ServiceSpec{
			Name: n, ServiceName: strings.ReplaceAll(n, "_", "-"), Image: "img",
			Ports: []v1alpha1.PortSpec{{Name: "http", Target: 8080}},
		})
	}
	return env
}

func TestPlanHosts(t *testing.T) {
	env := hostsEnv("web_app", "client")
	ips := map[string]string{"web-app": "10.96.0.20", "client": "10.96.0.21"}
	objs, err := render.Render(env, render.Options{ClusterIPs: ips})
	if err != nil {
		t.Fatal(err)
	}
	plan := planHosts(env, objs, ips)
	if plan == nil {
		t.Fatal("no hosts plan for an environment with web_app")
	}
	file := plan.Files["client"]
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "127.0.1.1\tclient\n", "10.96.0.20\tweb_app\n"} {
		if !strings.Contains(file, want) {
			t.Errorf("client's hosts file lacks %q:\n%s", want, file)
		}
	}
	cm := plan.configMap(env)
	if cm.Name != HostsConfigMapName || cm.Data["web-app"] == "" || cm.Data["client"] != file || cm.Labels[v1alpha1.LabelEnv] != "app" {
		t.Errorf("configMap %+v", cm)
	}

	rs := objs.ServiceByName("client")
	plan.mount(rs)
	tmpl := rs.Deployment.Spec.Template
	if tmpl.Spec.Hostname != "client" || tmpl.Annotations[AnnotationHostsHash] == "" ||
		rs.Deployment.Annotations[AnnotationHostsHash] != tmpl.Annotations[AnnotationHostsHash] {
		t.Errorf("template %+v", tmpl.ObjectMeta)
	}
	found := false
	for _, m := range tmpl.Spec.Containers[0].VolumeMounts {
		found = found || (m.MountPath == "/etc/hosts" && m.SubPath == "hosts" && m.Name == hostsVolume)
	}
	if !found {
		t.Errorf("no /etc/hosts mount: %+v", tmpl.Spec.Containers[0].VolumeMounts)
	}

	// Without a ClusterIP yet, or without such names, nothing to do.
	if p := planHosts(env, objs, nil); p != nil {
		t.Errorf("plan without ClusterIPs: %+v", p)
	}
	plain := hostsEnv("web", "db")
	objs, err = render.Render(plain, render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p := planHosts(plain, objs, map[string]string{"web": "10.96.0.1", "db": "10.96.0.2"}); p != nil {
		t.Errorf("plan for DNS names only: %+v", p)
	}
}
