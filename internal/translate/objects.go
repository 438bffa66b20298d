package translate

import (
	"errors"
	"io/fs"
	"path"
	"unicode/utf8"

	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// maxObjectBytes is Kubernetes' limit for one Secret or ConfigMap.
const maxObjectBytes = 1 << 20

// fileKind is what differs between compose secrets and configs, which are otherwise mounted the
// same way.
type fileKind struct {
	key  string // compose key: "secrets"
	noun string // "secret"
	kind string // Kubernetes kind of the object holding the content: "Secret"
	dir  string // where a file without an absolute target goes
	// contentRequired: a definition without file, environment or content is an error (else empty).
	contentRequired bool
	// has tells whether the translator already holds the object; add adds it.
	has func(t *translator, obj string) bool
	add func(t *translator, obj, key string, data []byte)
}

var (
	secretFiles = fileKind{key: "secrets", noun: "secret", kind: "Secret", dir: "/run/secrets/", contentRequired: true,
		has: func(t *translator, obj string) bool { _, ok := t.secrets[obj]; return ok },
		add: func(t *translator, obj, key string, data []byte) {
			t.secrets[obj] = &corev1.Secret{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
				ObjectMeta: metav1.ObjectMeta{Name: obj, Namespace: t.ns, Labels: t.labels()},
				Type:       corev1.SecretTypeOpaque,
				Data:       map[string][]byte{key: data},
			}
		}}
	configFiles = fileKind{key: "configs", noun: "config", kind: "ConfigMap", dir: "/",
		has: func(t *translator, obj string) bool { _, ok := t.configMaps[obj]; return ok },
		add: func(t *translator, obj, key string, data []byte) {
			cm := &corev1.ConfigMap{
				TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
				ObjectMeta: metav1.ObjectMeta{Name: obj, Namespace: t.ns, Labels: t.labels()},
			}
			if utf8.Valid(data) {
				cm.Data = map[string]string{key: string(data)}
			} else {
				cm.BinaryData = map[string][]byte{key: data}
			}
			t.configMaps[obj] = cm
		}}
)

// secretMounts mounts compose secrets from Secret objects. Secret contents go into Result.Secrets
// only, never into the spec.
func (t *translator) secretMounts(out *v1alpha1.ServiceSpec, s types.ServiceConfig) error {
	for _, ref := range s.Secrets {
		def, ok := t.p.Secrets[ref.Source]
		fm, err := t.fileMount(secretFiles, s.Name, types.FileReferenceConfig(ref), types.FileObjectConfig(def), ok)
		if err != nil {
			return err
		}
		out.Secrets = append(out.Secrets, fm)
	}
	return nil
}

// configMounts mounts compose configs from ConfigMap objects.
func (t *translator) configMounts(out *v1alpha1.ServiceSpec, s types.ServiceConfig) error {
	for _, ref := range s.Configs {
		def, ok := t.p.Configs[ref.Source]
		fm, err := t.fileMount(configFiles, s.Name, types.FileReferenceConfig(ref), types.FileObjectConfig(def), ok)
		if err != nil {
			return err
		}
		out.Configs = append(out.Configs, fm)
	}
	return nil
}

// fileMount is the mount of a service's secret or config reference; defined tells whether its
// top-level definition def exists.
func (t *translator) fileMount(k fileKind, service string, ref types.FileReferenceConfig, def types.FileObjectConfig, defined bool) (v1alpha1.FileMount, error) {
	if !defined {
		return v1alpha1.FileMount{}, t.errorf(service, k.key, "%s %q is not defined under the top-level %s", k.noun, ref.Source, k.key)
	}
	obj, key, err := t.fileObject(k, service, ref.Source, def)
	if err != nil {
		return v1alpha1.FileMount{}, err
	}
	target := ref.Target
	switch {
	case target == "":
		target = k.dir + ref.Source
	case !path.IsAbs(target):
		target = k.dir + target
	}
	fm := v1alpha1.FileMount{Name: ref.Source, Object: obj, Key: key, Target: target}
	if ref.Mode != nil {
		m := int32(*ref.Mode)
		fm.Mode = &m
	}
	if ref.UID != "" || ref.GID != "" {
		t.warn(service, k.key, "%s: uid and gid are not supported; the file belongs to the container's user", ref.Source)
	}
	return fm, nil
}

// fileObject is the object and key holding the content of the secret or config name: an external
// one, or one the translator makes (once per name).
func (t *translator) fileObject(k fileKind, service, name string, def types.FileObjectConfig) (string, string, error) {
	key := dataKey(name)
	if bool(def.External) {
		obj := def.Name
		if obj == "" {
			obj = name
		}
		obj = dns1123Label(obj, k.noun)
		t.warn("", k.key+"."+name, "external: a %s named %q with key %q must exist in the environment's namespace", k.kind, obj, key)
		return obj, key, nil
	}
	obj := objectName(k.noun, name)
	if k.has(t, obj) {
		return obj, key, nil
	}
	if def.Driver != "" || len(def.DriverOpts) > 0 || def.TemplateDriver != "" {
		t.warn("", k.key+"."+name, "driver, driver_opts and template_driver are not supported; the content is used as is")
	}
	var data []byte
	switch {
	case def.File != "":
		b, err := t.fs.ReadFile(def.File, maxObjectBytes-1024)
		if err != nil {
			return "", "", t.errorf(service, k.key, "%s %q: cannot read %s: %v", k.noun, name, def.File, errMsg(err))
		}
		data = b
	case def.Environment != "":
		v, ok := t.p.Environment[def.Environment]
		if def.Content != "" {
			v, ok = def.Content, true
		}
		if !ok {
			return "", "", t.errorf(service, k.key, "%s %q: environment variable %s is not set", k.noun, name, def.Environment)
		}
		data = []byte(v)
	case def.Content == "" && k.contentRequired:
		return "", "", t.errorf(service, k.key, "%s %q has no file, environment or content", k.noun, name)
	default:
		data = []byte(def.Content)
	}
	if len(data) > maxObjectBytes-1024 {
		return "", "", t.errorf(service, k.key, "%s %q is too large for a Kubernetes %s (%s; limit 1 MiB)", k.noun, name, k.kind, humanBytes(int64(len(data))))
	}
	k.add(t, obj, key, data)
	return obj, key, nil
}

func errMsg(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
