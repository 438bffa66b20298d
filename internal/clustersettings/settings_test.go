package clustersettings

import (
	"context"
	"errors"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
)

func TestRoundTrip(t *testing.T) {
	in := Settings{Namespace: "ops", RegistryPush: "reg.ops.svc:5000", RegistryPull: "127.0.0.1:5100",
		BuilderSelector: "app.kubernetes.io/name=ergomake-builder", BuilderPort: 1234, BuilderMode: "privileged",
		PodSecurity: PodSecurityRestricted, OperatorVersion: "v1.2.3"}
	cm := in.ConfigMap()
	if cm.Namespace != "ops" || cm.Name != Name {
		t.Fatalf("ConfigMap is %s/%s", cm.Namespace, cm.Name)
	}
	out, err := FromConfigMap(cm)
	if err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
}

func TestFromConfigMapRejectsBadValues(t *testing.T) {
	for _, kv := range [][2]string{{KeyPodSecurity, "lax"}, {KeyBuilderPort, "0"}, {KeyBuilderPort, "http"}} {
		cm := Defaults().ConfigMap()
		cm.Data[kv[0]] = kv[1]
		if _, err := FromConfigMap(cm); err == nil {
			t.Errorf("%s=%q accepted", kv[0], kv[1])
		}
	}
}

func TestReadMissingIsNotInstalled(t *testing.T) {
	s, err := Read(context.Background(), fake.NewClientset(), "")
	if !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("err = %v, want ErrNotInstalled", err)
	}
	if s.PodSecurity != PodSecurityBaseline {
		t.Fatalf("defaults: %+v", s)
	}
	cm := Settings{PodSecurity: PodSecurityPrivileged}.ConfigMap()
	got, err := Read(context.Background(), fake.NewClientset(cm), "")
	if err != nil || got.PodSecurity != PodSecurityPrivileged || got.Namespace != DefaultNamespace {
		t.Fatalf("Read = %+v, %v", got, err)
	}
}
