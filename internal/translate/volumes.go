package translate

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

func (t *translator) mounts(out *v1alpha1.ServiceSpec, s types.ServiceConfig) error {
	for i, v := range s.Volumes {
		var m *v1alpha1.VolumeMount
		var err error
		if !strings.HasPrefix(v.Target, "/") {
			t.warn(s.Name, "volumes", "target %q is not an absolute Linux path; not mounted", v.Target)
			continue
		}
		switch v.Type {
		case types.VolumeTypeVolume:
			m = t.volumeMount(s, v)
		case types.VolumeTypeBind:
			m, err = t.bindMount(s, i, v)
		case types.VolumeTypeTmpfs:
			m = &v1alpha1.VolumeMount{Type: v1alpha1.MountTmpfs, Target: v.Target}
			if v.Tmpfs != nil {
				if v.Tmpfs.Size > 0 {
					m.SizeLimit = resource.NewQuantity(int64(v.Tmpfs.Size), resource.BinarySI)
				}
				if v.Tmpfs.Mode != 0 {
					t.warn(s.Name, "volumes", "tmpfs %s: mode %o is not supported; the directory has the default mode", v.Target, v.Tmpfs.Mode)
				}
			}
		default:
			t.warn(s.Name, "volumes", "%s volume %s is not supported; not mounted", v.Type, v.Target)
		}
		if err != nil {
			return err
		}
		if m != nil {
			out.Volumes = append(out.Volumes, *m)
		}
	}
	for _, tm := range s.Tmpfs {
		path, opts, _ := strings.Cut(tm, ":")
		if !strings.HasPrefix(path, "/") {
			// as docker's engine: a tmpfs mount path must be absolute
			return t.errorf(s.Name, "tmpfs", "%q is not an absolute path", path)
		}
		m := v1alpha1.VolumeMount{Type: v1alpha1.MountTmpfs, Target: path}
		for _, o := range strings.Split(opts, ",") {
			k, val, _ := strings.Cut(o, "=")
			switch k {
			case "":
			case "size":
				q, err := parseSize(val)
				if err != nil {
					t.warn(s.Name, "tmpfs", "%s: invalid size %q; no size limit", path, val)
				} else {
					m.SizeLimit = q
				}
			case "ro":
				m.ReadOnly = true
			case "rw":
			default:
				t.warn(s.Name, "tmpfs", "%s: option %q is not supported; ignored", path, o)
			}
		}
		out.Volumes = append(out.Volumes, m)
	}
	sort.SliceStable(out.Volumes, func(i, j int) bool { return out.Volumes[i].Target < out.Volumes[j].Target })
	return nil
}

func parseSize(v string) (*resource.Quantity, error) {
	var b types.UnitBytes
	if err := b.DecodeMapstructure(v); err != nil {
		return nil, err
	}
	return resource.NewQuantity(int64(b), resource.BinarySI), nil
}

func (t *translator) volumeMount(s types.ServiceConfig, v types.ServiceVolumeConfig) *v1alpha1.VolumeMount {
	if v.Source == "" {
		return &v1alpha1.VolumeMount{Type: v1alpha1.MountEmptyDir, Target: v.Target, ReadOnly: v.ReadOnly}
	}
	m := &v1alpha1.VolumeMount{Type: v1alpha1.MountVolume, Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly}
	if v.Volume != nil && v.Volume.Subpath != "" {
		m.SubPath = v.Volume.Subpath
	}
	if _, ok := t.volumes[v.Source]; !ok {
		cfg, declared := t.p.Volumes[v.Source]
		spec := v1alpha1.VolumeSpec{Name: v.Source, ClaimName: objectName("vol", v.Source)}
		if !declared {
			// compose-go rejects undeclared volumes; keep going with a project-local claim
			t.warn(s.Name, "volumes", "volume %q is not declared under the top-level volumes", v.Source)
		}
		if bool(cfg.External) {
			spec.External = true
			name := cfg.Name
			if name == "" {
				name = v.Source
			}
			spec.ClaimName = dns1123Label(name, "volume")
			t.warn("", "volumes."+v.Source, "external: a PersistentVolumeClaim named %q must exist in the environment's namespace", spec.ClaimName)
		}
		if cfg.Driver != "" && cfg.Driver != "local" {
			t.warn("", "volumes."+v.Source+".driver", "driver %q is not supported; the cluster's default storage class is used", cfg.Driver)
		}
		if len(cfg.DriverOpts) > 0 {
			t.warn("", "volumes."+v.Source+".driver_opts", "not supported; the cluster's default storage class is used")
		}
		t.volumes[v.Source] = spec
	}
	return m
}

func (t *translator) inProject(p string) bool {
	r, err := filepath.Rel(t.p.WorkingDir, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, "../")
}

// rel shows p relative to the project directory when it is inside it.
func (t *translator) rel(p string) string {
	if t.p.WorkingDir != "" && t.inProject(p) {
		r, _ := filepath.Rel(t.p.WorkingDir, p)
		return "./" + filepath.ToSlash(r)
	}
	return p
}

func isEmptyDir(fsys Files, dir string) (bool, error) {
	entries, err := fsys.ReadDir(dir)
	return len(entries) == 0, err
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<20)), ".0") + " MiB"
	case n >= 1<<10:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/(1<<10)), ".0") + " KiB"
	}
	return fmt.Sprintf("%d bytes", n)
}
