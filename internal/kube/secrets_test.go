package kube

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// envSecretResult is what translate makes of a project whose service api has an environment.
type envSecretResult struct {
	Env     *v1alpha1.ErgomakeEnv
	Secrets []*corev1.Secret
}

func newEnvSecretResult(value string) *envSecretResult {
	return &envSecretResult{
		Env: &v1alpha1.ErgomakeEnv{Spec: v1alpha1.EnvSpec{Services: []v1alpha1.ServiceSpec{
			{Name: "api", EnvSecret: "env-api", Environment: []v1alpha1.EnvVar{{Name: "TOKEN", SecretKey: "TOKEN"}}},
			{Name: "plain"},
		}}},
		Secrets: []*corev1.Secret{
			{ObjectMeta: metav1.ObjectMeta{Name: "env-api"}, Data: map[string][]byte{"TOKEN": []byte(value)}},
			{ObjectMeta: metav1.ObjectMeta{Name: "secret-other"}, Data: map[string][]byte{"x": []byte("y")}},
		},
	}
}

// TestEnvSecretVersions: unchanged values keep the version the cluster's Secret has (no
// restart); changed values, or a new Secret, get a new token; the spec never holds a hash.
func TestEnvSecretVersions(t *testing.T) {
	n := 0
	token := func() string { n++; return "token-" + string(rune('0'+n)) }
	cluster := map[string]*corev1.Secret{}
	get := func(name string) (*corev1.Secret, error) { return cluster[name], nil }
	apply := func(res *envSecretResult) {
		for _, s := range res.Secrets {
			cluster[s.Name] = s.DeepCopy()
		}
	}

	first := newEnvSecretResult("one")
	if err := SetEnvSecretVersions(first.Env, first.Secrets, get, token); err != nil {
		t.Fatal(err)
	}
	api := first.Env.Spec.Services[0]
	if api.EnvSecretVersion != "token-1" || first.Env.Spec.Services[1].EnvSecretVersion != "" {
		t.Fatalf("versions %q %q", api.EnvSecretVersion, first.Env.Spec.Services[1].EnvSecretVersion)
	}
	sec := first.Secrets[0]
	if sec.Annotations[v1alpha1.AnnotationEnvSecretVersion] != "token-1" || sec.Annotations[AnnotationContentHash] == "" {
		t.Errorf("Secret annotations %v", sec.Annotations)
	}
	if first.Secrets[1].Annotations != nil {
		t.Errorf("a compose secret got annotations %v", first.Secrets[1].Annotations)
	}
	if strings.Contains(api.EnvSecretVersion, sec.Annotations[AnnotationContentHash][:8]) {
		t.Error("the spec's version holds the content hash")
	}
	apply(first)

	same := newEnvSecretResult("one")
	if err := SetEnvSecretVersions(same.Env, same.Secrets, get, token); err != nil {
		t.Fatal(err)
	}
	if v := same.Env.Spec.Services[0].EnvSecretVersion; v != "token-1" {
		t.Errorf("unchanged values: version %q, want token-1 (no restart)", v)
	}
	apply(same)

	changed := newEnvSecretResult("two")
	if err := SetEnvSecretVersions(changed.Env, changed.Secrets, get, token); err != nil {
		t.Fatal(err)
	}
	if v := changed.Env.Spec.Services[0].EnvSecretVersion; v != "token-2" {
		t.Errorf("changed values: version %q, want a new token", v)
	}

	boom := errors.New("forbidden")
	x := newEnvSecretResult("x")
	if err := SetEnvSecretVersions(x.Env, x.Secrets, func(string) (*corev1.Secret, error) { return nil, boom }, token); !errors.Is(err, boom) {
		t.Errorf("error %v, want %v", err, boom)
	}
}
