package render

import (
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

const (
	shmVolumeName = "dshm"
	shmPath       = "/dev/shm"
)

// validSubPath reports whether p is empty or a relative path that stays inside its volume.
func validSubPath(p string) bool {
	if p == "" {
		return true
	}
	if path.IsAbs(p) {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return false
		}
	}
	return true
}

// volumeMounts builds the container mounts and pod volumes of svc, in spec order: volumes,
// secrets, configs, then /dev/shm.
func volumeMounts(svc *v1alpha1.ServiceSpec, volumes map[string]*v1alpha1.VolumeSpec, e *errs) ([]corev1.VolumeMount, []corev1.Volume) {
	name := svc.Name
	var mounts []corev1.VolumeMount
	var vols []corev1.Volume
	alloc := nameAllocator{shmVolumeName: true}
	targets := map[string]string{}
	target := func(field, t string) bool {
		if !path.IsAbs(t) {
			e.add(name, field+".target", "%q is not an absolute path", t)
			return false
		}
		t = path.Clean(t)
		if other, ok := targets[t]; ok {
			e.add(name, field+".target", "%q is also the target of %s", t, other)
			return false
		}
		targets[t] = field
		return true
	}
	// Pod volumes shared by several mounts of the same source.
	byKey := map[string]string{}
	volumeFor := func(key, hint string, src corev1.VolumeSource) string {
		if n, ok := byKey[key]; ok {
			return n
		}
		n := alloc.name(hint)
		byKey[key] = n
		vols = append(vols, corev1.Volume{Name: n, VolumeSource: src})
		return n
	}

	for i, m := range svc.Volumes {
		field := fmt.Sprintf("volumes[%d]", i)
		if !target(field, m.Target) {
			continue
		}
		if !validSubPath(m.SubPath) {
			e.add(name, field+".subPath", "%q must be a relative path without '..'", m.SubPath)
			continue
		}
		if m.SizeLimit != nil && m.SizeLimit.Sign() < 0 {
			e.add(name, field+".sizeLimit", "must not be negative, not %s", m.SizeLimit.String())
			continue
		}
		vm := corev1.VolumeMount{MountPath: m.Target, SubPath: m.SubPath, ReadOnly: m.ReadOnly}
		switch m.Type {
		case v1alpha1.MountVolume:
			v := volumes[m.Source]
			if v == nil {
				e.add(name, field+".source", "volume %q is not declared in the project's volumes", m.Source)
				continue
			}
			if v.EmptyDir {
				vm.Name = volumeFor("volume/"+v.Name, v.Name, corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: copyQuantity(v.Size)}})
			} else {
				vm.Name = volumeFor("volume/"+v.Name, v.Name, corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.ClaimName},
				})
			}
		case v1alpha1.MountConfigMap:
			if msgs := validation.IsDNS1123Subdomain(m.Source); len(msgs) > 0 {
				e.add(name, field+".source", "%q is not a valid ConfigMap name: %s", m.Source, strings.Join(msgs, "; "))
				continue
			}
			items, ok := keyPaths(name, field, m.Items, e)
			if !ok {
				continue
			}
			src := corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: m.Source},
				Items:                items,
			}}
			// One pod volume per mount: items differ between mounts of one ConfigMap.
			vm.Name = volumeFor(fmt.Sprintf("configMap/%d", i), m.Source, src)
		case v1alpha1.MountSecret:
			if msgs := validation.IsDNS1123Subdomain(m.Source); len(msgs) > 0 {
				e.add(name, field+".source", "%q is not a valid Secret name: %s", m.Source, strings.Join(msgs, "; "))
				continue
			}
			items, ok := keyPaths(name, field, m.Items, e)
			if !ok {
				continue
			}
			src := corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: m.Source, Items: items}}
			vm.Name = volumeFor(fmt.Sprintf("secret/%d", i), m.Source, src)
		case v1alpha1.MountTmpfs:
			vm.Name = volumeFor(fmt.Sprintf("tmpfs/%d", i), "tmpfs-"+m.Target, corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: copyQuantity(m.SizeLimit)},
			})
		case v1alpha1.MountEmptyDir:
			vm.Name = volumeFor(fmt.Sprintf("emptyDir/%d", i), "anon-"+m.Target, corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: copyQuantity(m.SizeLimit)},
			})
		case v1alpha1.MountHostPath:
			if !path.IsAbs(m.Source) {
				e.add(name, field+".source", "host path %q is not absolute", m.Source)
				continue
			}
			vm.Name = volumeFor("hostPath/"+path.Clean(m.Source), "host-"+m.Source, corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: m.Source},
			})
		default:
			e.add(name, field+".type", "unknown mount type %q (want volume, configMap, secret, tmpfs, emptyDir or hostPath)", m.Type)
			continue
		}
		mounts = append(mounts, vm)
	}

	files := func(kind string, list []v1alpha1.FileMount, secret bool) {
		for i, f := range list {
			field := fmt.Sprintf("%s[%d]", kind, i)
			if f.Name != "" {
				field = fmt.Sprintf("%s %q", kind, f.Name)
			}
			if !target(field, f.Target) {
				continue
			}
			if msgs := validation.IsDNS1123Subdomain(f.Object); len(msgs) > 0 {
				e.add(name, field+".object", "%q is not a valid object name: %s", f.Object, strings.Join(msgs, "; "))
				continue
			}
			if msgs := validation.IsConfigMapKey(f.Key); len(msgs) > 0 {
				e.add(name, field+".key", "%q is not a valid key: %s", f.Key, strings.Join(msgs, "; "))
				continue
			}
			if f.Mode != nil && (*f.Mode < 0 || *f.Mode > 0o777) {
				e.add(name, field+".mode", "%#o is not a file mode (0-0777)", *f.Mode)
				continue
			}
			base := path.Base(path.Clean(f.Target))
			items := []corev1.KeyToPath{{Key: f.Key, Path: base, Mode: copyPtr(f.Mode)}}
			var src corev1.VolumeSource
			hint := "config-" + f.Name
			if secret {
				hint = "secret-" + f.Name
				src.Secret = &corev1.SecretVolumeSource{SecretName: f.Object, Items: items}
			} else {
				src.ConfigMap = &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: f.Object}, Items: items}
			}
			vn := volumeFor(fmt.Sprintf("%s/%d", kind, i), hint, src)
			mounts = append(mounts, corev1.VolumeMount{Name: vn, MountPath: f.Target, SubPath: base, ReadOnly: true})
		}
	}
	files("secrets", svc.Secrets, true)
	files("configs", svc.Configs, false)

	if svc.ShmSize != nil {
		switch {
		case svc.ShmSize.Sign() <= 0:
			e.add(name, "shmSize", "must be positive, not %s", svc.ShmSize.String())
		case target("shmSize", shmPath):
			size := svc.ShmSize.DeepCopy()
			vols = append(vols, corev1.Volume{Name: shmVolumeName, VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &size},
			}})
			mounts = append(mounts, corev1.VolumeMount{Name: shmVolumeName, MountPath: shmPath})
		}
	}
	return mounts, vols
}

func keyPaths(name, field string, in []v1alpha1.KeyPath, e *errs) ([]corev1.KeyToPath, bool) {
	ok := true
	var out []corev1.KeyToPath
	for j, kp := range in {
		f := fmt.Sprintf("%s.items[%d]", field, j)
		if msgs := validation.IsConfigMapKey(kp.Key); len(msgs) > 0 {
			e.add(name, f+".key", "%q is not a valid key: %s", kp.Key, strings.Join(msgs, "; "))
			ok = false
		}
		if kp.Path == "" || !validSubPath(kp.Path) {
			e.add(name, f+".path", "%q must be a relative path without '..'", kp.Path)
			ok = false
		}
		if kp.Mode != nil && (*kp.Mode < 0 || *kp.Mode > 0o777) {
			e.add(name, f+".mode", "%#o is not a file mode (0-0777)", *kp.Mode)
			ok = false
		}
		out = append(out, corev1.KeyToPath{Key: kp.Key, Path: kp.Path, Mode: copyPtr(kp.Mode)})
	}
	return out, ok
}
