package translate

import (
	"os"
	"path"
	"unicode/utf8"

	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// maxObjectBytes is Kubernetes' limit for one Secret or ConfigMap.
const maxObjectBytes = 1 << 20

// secretMounts mounts compose secrets from Secret objects. Secret contents go into Result.Secrets
// only, never into the spec.
func (t *translator) secretMounts(out *v1alpha1.ServiceSpec, s types.ServiceConfig) error {
	for _, ref := range s.Secrets {
		def, ok := t.p.Secrets[ref.Source]
		if !ok {
			return t.errorf(s.Name, "secrets", "secret %q is not defined under the top-level secrets", ref.Source)
		}
		obj, key, err := t.secretObject(s.Name, ref.Source, types.FileObjectConfig(def))
		if err != nil {
			return err
		}
		target := ref.Target
		switch {
		case target == "":
			target = "/run/secrets/" + ref.Source
		case !path.IsAbs(target):
			target = "/run/secrets/" + target
		}
		fm := v1alpha1.FileMount{Name: ref.Source, Object: obj, Key: key, Target: target}
		if ref.Mode != nil {
			m := int32(*ref.Mode)
			fm.Mode = &m
		}
		if ref.UID != "" || ref.GID != "" {
			t.warn(s.Name, "secrets", "%s: uid and gid are not supported; the file belongs to the container's user", ref.Source)
		}
		out.Secrets = append(out.Secrets, fm)
	}
	return nil
}

func (t *translator) secretObject(service, name string, def types.FileObjectConfig) (string, string, error) {
	key := dataKey(name)
	if bool(def.External) {
		obj := def.Name
		if obj == "" {
			obj = name
		}
		obj = dns1123Label(obj, "secret")
		t.warn("", "secrets."+name, "external: a Secret named %q with key %q must exist in the environment's namespace", obj, key)
		return obj, key, nil
	}
	obj := objectName("secret", name)
	if _, done := t.secrets[obj]; done {
		return obj, key, nil
	}
	if def.Driver != "" || len(def.DriverOpts) > 0 || def.TemplateDriver != "" {
		t.warn("", "secrets."+name, "driver, driver_opts and template_driver are not supported; the content is used as is")
	}
	var data []byte
	switch {
	case def.File != "":
		b, err := os.ReadFile(def.File)
		if err != nil {
			return "", "", t.errorf(service, "secrets", "secret %q: cannot read %s: %v", name, def.File, errMsg(err))
		}
		data = b
	case def.Environment != "":
		v, ok := t.p.Environment[def.Environment]
		if def.Content != "" {
			v, ok = def.Content, true
		}
		if !ok {
			return "", "", t.errorf(service, "secrets", "secret %q: environment variable %s is not set", name, def.Environment)
		}
		data = []byte(v)
	case def.Content != "":
		data = []byte(def.Content)
	default:
		return "", "", t.errorf(service, "secrets", "secret %q has no file, environment or content", name)
	}
	if len(data) > maxObjectBytes-1024 {
		return "", "", t.errorf(service, "secrets", "secret %q is too large for a Kubernetes Secret (%s; limit 1 MiB)", name, humanBytes(int64(len(data))))
	}
	t.secrets[obj] = &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: obj, Namespace: t.ns, Labels: t.labels()},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{key: data},
	}
	return obj, key, nil
}

// configMounts mounts compose configs from ConfigMap objects.
func (t *translator) configMounts(out *v1alpha1.ServiceSpec, s types.ServiceConfig) error {
	for _, ref := range s.Configs {
		def, ok := t.p.Configs[ref.Source]
		if !ok {
			return t.errorf(s.Name, "configs", "config %q is not defined under the top-level configs", ref.Source)
		}
		obj, key, err := t.configObject(s.Name, ref.Source, types.FileObjectConfig(def))
		if err != nil {
			return err
		}
		target := ref.Target
		switch {
		case target == "":
			target = "/" + ref.Source
		case !path.IsAbs(target):
			target = "/" + target
		}
		fm := v1alpha1.FileMount{Name: ref.Source, Object: obj, Key: key, Target: target}
		if ref.Mode != nil {
			m := int32(*ref.Mode)
			fm.Mode = &m
		}
		if ref.UID != "" || ref.GID != "" {
			t.warn(s.Name, "configs", "%s: uid and gid are not supported; the file belongs to the container's user", ref.Source)
		}
		out.Configs = append(out.Configs, fm)
	}
	return nil
}

func (t *translator) configObject(service, name string, def types.FileObjectConfig) (string, string, error) {
	key := dataKey(name)
	if bool(def.External) {
		obj := def.Name
		if obj == "" {
			obj = name
		}
		obj = dns1123Label(obj, "config")
		t.warn("", "configs."+name, "external: a ConfigMap named %q with key %q must exist in the environment's namespace", obj, key)
		return obj, key, nil
	}
	obj := objectName("config", name)
	if _, done := t.configMaps[obj]; done {
		return obj, key, nil
	}
	if def.Driver != "" || len(def.DriverOpts) > 0 || def.TemplateDriver != "" {
		t.warn("", "configs."+name, "driver, driver_opts and template_driver are not supported; the content is used as is")
	}
	var data []byte
	switch {
	case def.File != "":
		b, err := os.ReadFile(def.File)
		if err != nil {
			return "", "", t.errorf(service, "configs", "config %q: cannot read %s: %v", name, def.File, errMsg(err))
		}
		data = b
	case def.Environment != "":
		v, ok := t.p.Environment[def.Environment]
		if def.Content != "" {
			v, ok = def.Content, true
		}
		if !ok {
			return "", "", t.errorf(service, "configs", "config %q: environment variable %s is not set", name, def.Environment)
		}
		data = []byte(v)
	default:
		data = []byte(def.Content)
	}
	if len(data) > maxObjectBytes-1024 {
		return "", "", t.errorf(service, "configs", "config %q is too large for a Kubernetes ConfigMap (%s; limit 1 MiB)", name, humanBytes(int64(len(data))))
	}
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
	return obj, key, nil
}

func errMsg(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
