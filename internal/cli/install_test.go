package cli

import (
	"testing"
	"time"

	"github.com/ergomake/ergomake/internal/install"
)

func TestInstallOptions(t *testing.T) {
	// ERGOMAKE_NAMESPACE names environments' namespaces: it must not move the operator.
	f, _, _ := testFactory(t, "ERGOMAKE_NAMESPACE=envs", "ERGOMAKE_CONTEXT=ctx")
	var got *InstallOptions
	capture := func(o *InstallOptions) error { got = o; return nil }
	if err := parse(t, f, NewCmdInstall(f, capture), "--image ergomake.test/ergomake-operator:dev --revision r1"); err != nil {
		t.Fatal(err)
	}
	if got.Namespace != "ergomake-system" || got.Image != "ergomake.test/ergomake-operator:dev" || got.Revision != "r1" ||
		got.KubeContext != "ctx" || got.Timeout != 3*time.Minute {
		t.Errorf("got %+v", got)
	}
	if err := parse(t, f, NewCmdInstall(f, capture), "-n ops --timeout 1m"); err != nil {
		t.Fatal(err)
	}
	if got.Namespace != "ops" || got.Timeout != time.Minute {
		t.Errorf("got %+v", got)
	}
	if err := parse(t, f, NewCmdInstall(f, capture), "--timeout 0s"); err == nil {
		t.Error("install accepted a zero timeout")
	}
	if got.RegistryImage != install.DefaultRegistryImage() || got.RelayPort != install.DefaultRelayPort {
		t.Errorf("registry defaults: %q %d", got.RegistryImage, got.RelayPort)
	}
	if err := parse(t, f, NewCmdInstall(f, capture), "--registry-image ergomake.test/ergomake-registry:dev --relay-port 5200"); err != nil {
		t.Fatal(err)
	}
	if o := got.install(); o.RegistryImage != "ergomake.test/ergomake-registry:dev" || o.RelayPort != 5200 {
		t.Errorf("install options %+v", o)
	}
	if got.PodSecurity != "baseline" || got.install().PodSecurity != "baseline" {
		t.Errorf("default pod security %q", got.PodSecurity)
	}
	if err := parse(t, f, NewCmdInstall(f, capture), "--pod-security restricted"); err != nil || got.install().PodSecurity != "restricted" {
		t.Errorf("--pod-security restricted: %v %+v", err, got)
	}
	for _, bad := range []string{"--relay-port 0", "--relay-port 65536", "--registry-image=", "--pod-security root", "--pod-security="} {
		if err := parse(t, f, NewCmdInstall(f, capture), bad); err == nil {
			t.Errorf("install accepted %s", bad)
		}
	}
	if err := parse(t, f, NewCmdInstall(f, capture), ""); err != nil {
		t.Fatal(err)
	}
	if o := got.install(); o.BuilderMode != install.BuilderPrivileged || o.BuilderImage != "" || len(o.BuilderMirrors) != 0 {
		t.Errorf("builder defaults: %+v", o)
	}
	if err := parse(t, f, NewCmdInstall(f, capture), "--builder-mode rootless --builder-image b:1 --builder-revision r2 --builder-mirror docker.io --builder-mirror ergomake.test"); err != nil {
		t.Fatal(err)
	}
	if o := got.install(); o.BuilderMode != install.BuilderRootless || o.BuilderImage != "b:1" || o.BuilderRevision != "r2" ||
		len(o.BuilderMirrors) != 2 || o.BuilderMirrors[1] != "ergomake.test" {
		t.Errorf("builder options %+v", o)
	}
	for _, bad := range []string{"--builder-mode sudo", "--builder-mirror https://docker.io", "--builder-mode none --builder-image b:1", "--builder-mode none --builder-mirror docker.io"} {
		if err := parse(t, f, NewCmdInstall(f, capture), bad); err == nil {
			t.Errorf("install accepted %s", bad)
		}
	}
	if err := parse(t, f, NewCmdUninstall(f, capture), "extra"); err == nil {
		t.Error("uninstall accepted an argument")
	}
	if err := parse(t, f, NewCmdUninstall(f, capture), "--dry-run"); err != nil || got.Namespace != "ergomake-system" || !got.DryRun {
		t.Errorf("uninstall: %v %+v", err, got)
	}
}

func TestOperatorOptions(t *testing.T) {
	f, _, _ := testFactory(t)
	var got *OperatorOptions
	err := parse(t, f, NewCmdOperator(f, func(o *OperatorOptions) error { got = o; return nil }),
		"--instance dev --watch-namespace a,b --kubeconfig /tmp/kc")
	if err != nil {
		t.Fatal(err)
	}
	if got.Instance != "dev" || len(got.Namespaces) != 2 || got.Namespaces[1] != "b" || got.Kubeconfig != "/tmp/kc" || got.MetricsAddr != "0" {
		t.Errorf("got %+v", got)
	}
}
