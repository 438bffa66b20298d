package translate

import (
	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// environment puts the service's variables (compose-go has already folded env_file into
// environment, environment winning, and interpolated every value) in the spec by name only: their
// values go into one Secret per service, env-<service>, that the spec references (ARCHITECTURE.md
// decision 15). Each variable reads its own key (valueFrom.secretKeyRef), so a name that is no
// valid Secret key ("my var", "A:B") keeps its exact name in the container.
func (t *translator) environment(out *v1alpha1.ServiceSpec, s types.ServiceConfig) {
	name := s.Name
	data := map[string][]byte{}
	for _, k := range sortedKeys(s.Environment) {
		v := s.Environment[k]
		if k == "" {
			t.warn(name, "environment", "an empty entry: left out")
			continue
		}
		if v == nil {
			t.warn(name, "environment", "%s is not set in your environment; left out, as docker compose does", k)
			continue
		}
		key := envSecretKey(k, func(c string) bool { _, ok := data[c]; return ok })
		data[key] = []byte(*v)
		out.Environment = append(out.Environment, v1alpha1.EnvVar{Name: k, SecretKey: key})
	}
	if len(data) == 0 {
		return
	}
	obj := objectName("env", name)
	out.EnvSecret = obj
	t.secrets[obj] = &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: obj, Namespace: t.ns, Labels: t.labels()},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}

// envSecretKey is the Secret key of variable name: the name itself when it is a valid key, else a
// valid key with a hash of the name (so that "a b" and "a_b" stay apart); taken says which keys
// are used.
func envSecretKey(name string, taken func(string) bool) string {
	key := name
	if len(validation.IsConfigMapKey(name)) > 0 {
		key = truncate(dataKey(name), 200) + "-" + shortHash(name)
	}
	return uniqueName(key, taken)
}
