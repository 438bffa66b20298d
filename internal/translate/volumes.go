package translate

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// nodePaths are host paths every node has: bind mounts of them become hostPath mounts.
var nodePaths = []string{"/etc/localtime", "/etc/timezone", "/usr/share/zoneinfo", "/etc/machine-id",
	"/dev", "/sys", "/proc", "/lib/modules", "/var/log"}

func isNodePath(p string) bool {
	for _, n := range nodePaths {
		if p == n || strings.HasPrefix(p, n+"/") {
			return true
		}
	}
	return false
}

func isDockerSocket(p string) bool {
	return strings.HasSuffix(p, "/docker.sock") || strings.HasSuffix(p, "/podman.sock") || strings.HasSuffix(p, "/containerd.sock")
}

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

func (t *translator) bindMount(s types.ServiceConfig, index int, v types.ServiceVolumeConfig) (*v1alpha1.VolumeMount, error) {
	src := v.Source
	if v.Bind != nil && v.Bind.Propagation != "" {
		t.warn(s.Name, "volumes", "%s: propagation %q is not supported; ignored", v.Target, v.Bind.Propagation)
	}
	if isDockerSocket(src) {
		t.warn(s.Name, "volumes", "%s: the Docker socket is not available in the cluster; not mounted", src)
		return nil, nil
	}
	if isNodePath(src) {
		return &v1alpha1.VolumeMount{Type: v1alpha1.MountHostPath, Source: src, Target: v.Target, ReadOnly: v.ReadOnly}, nil
	}
	fi, err := os.Stat(src)
	if err != nil {
		if v.Bind != nil && !bool(v.Bind.CreateHostPath) {
			return nil, t.errorfAt(s.Name, "volumes", fmt.Sprintf("volumes.%d", index), "%s does not exist (create_host_path: false)", src)
		}
		t.warn(s.Name, "volumes", "%s does not exist: %s starts as an empty directory in the cluster, and what is written there stays in the cluster", t.rel(src), v.Target)
		return &v1alpha1.VolumeMount{Type: v1alpha1.MountEmptyDir, Target: v.Target, ReadOnly: v.ReadOnly}, nil
	}
	if fi.IsDir() && !t.inProject(src) {
		t.warn(s.Name, "volumes", "%s is a folder outside the project directory: it is not shipped to the cluster, so %s starts as an empty directory", src, v.Target)
		return &v1alpha1.VolumeMount{Type: v1alpha1.MountEmptyDir, Target: v.Target, ReadOnly: v.ReadOnly}, nil
	}
	if fi.IsDir() {
		empty, err := isEmptyDir(src)
		if err != nil {
			return nil, t.errorf(s.Name, "volumes", "cannot read %s: %v", src, err)
		}
		if empty {
			t.warn(s.Name, "volumes", "%s is empty: %s starts as an empty directory in the cluster, and what is written there stays in the cluster", t.rel(src), v.Target)
			return &v1alpha1.VolumeMount{Type: v1alpha1.MountEmptyDir, Target: v.Target, ReadOnly: v.ReadOnly}, nil
		}
	}
	cm, items, err := t.bindConfigMap(s, index, src, fi)
	if err != nil {
		return nil, err
	}
	m := &v1alpha1.VolumeMount{Type: v1alpha1.MountConfigMap, Source: cm, Target: v.Target, ReadOnly: v.ReadOnly}
	m.Items = items
	if !fi.IsDir() {
		// one file: mounted by subPath; its item keeps its mode (an executable entrypoint script)
		m.Items[0].Path = m.Items[0].Key
		m.SubPath = m.Items[0].Key
	}
	where := ""
	if !t.inProject(src) {
		where = " (it is outside the project directory: make sure it holds nothing secret)"
	}
	if v.ReadOnly {
		t.warn(s.Name, "volumes", "%s is shipped as a snapshot (ConfigMap %s): later edits on your machine do not reach the container%s", t.rel(src), cm, where)
	} else {
		t.warn(s.Name, "volumes", "%s is shipped as a read-only snapshot (ConfigMap %s): later edits do not reach the container and the container cannot write there%s", t.rel(src), cm, where)
	}
	return m, nil
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

func isEmptyDir(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	return len(entries) == 0, err
}

// bindConfigMap ships a file or folder as a ConfigMap (shared by every mount of the same path) and
// returns its name and the key → path items.
func (t *translator) bindConfigMap(s types.ServiceConfig, index int, src string, fi fs.FileInfo) (string, []v1alpha1.KeyPath, error) {
	name := objectName("bind", strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))+"-"+shortHash(t.rel(src)))
	name = truncate(name, 63)
	var files []string // relative paths
	if fi.IsDir() {
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == ".git" && path != src {
					return filepath.SkipDir
				}
				return nil
			}
			info, err := os.Stat(path) // follow symlinks
			if err != nil || !info.Mode().IsRegular() {
				return nil
			}
			r, _ := filepath.Rel(src, path)
			files = append(files, filepath.ToSlash(r))
			return nil
		})
		if err != nil {
			return "", nil, t.errorf(s.Name, "volumes", "cannot read %s: %v", src, err)
		}
	} else {
		files = []string{filepath.Base(src)}
	}
	sort.Strings(files)

	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: t.ns, Labels: t.labels()},
	}
	cm.Annotations = map[string]string{"ergomake.dev/source": t.rel(src)}
	var items []v1alpha1.KeyPath
	var total int64
	keys := map[string]bool{}
	for _, f := range files {
		path := src
		if fi.IsDir() {
			path = filepath.Join(src, filepath.FromSlash(f))
		}
		info, err := os.Stat(path)
		if err != nil {
			return "", nil, t.errorf(s.Name, "volumes", "cannot read %s: %v", path, err)
		}
		total += info.Size() + int64(len(f)) // Kubernetes counts keys and values
		if total > t.opts.MaxConfigMapBytes {
			for _, rest := range files { // the whole size, for the message
				if fi.IsDir() {
					if ri, err := os.Stat(filepath.Join(src, filepath.FromSlash(rest))); err == nil && rest > f {
						total += ri.Size() + int64(len(rest))
					}
				}
			}
			return "", nil, t.errorfAt(s.Name, "volumes", fmt.Sprintf("volumes.%d", index), "%s is too large to ship to the cluster as a ConfigMap (%s; the limit is %s): mount a named volume instead, or only the files the service needs",
				t.rel(src), humanBytes(total), humanBytes(t.opts.MaxConfigMapBytes))
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", nil, t.errorf(s.Name, "volumes", "cannot read %s: %v", path, err)
		}
		key := dataKey(strings.ReplaceAll(f, "/", "__"))
		for i := 2; keys[key]; i++ {
			key = dataKey(fmt.Sprintf("%s_%d", strings.ReplaceAll(f, "/", "__"), i))
		}
		keys[key] = true
		if utf8.Valid(b) {
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[key] = string(b)
		} else {
			if cm.BinaryData == nil {
				cm.BinaryData = map[string][]byte{}
			}
			cm.BinaryData[key] = b
		}
		kp := v1alpha1.KeyPath{Key: key, Path: f}
		// keep what matters of the file's mode (not the umask's variations): executable scripts
		// stay executable, private files (keys readable by their owner only) stay private
		switch perm := info.Mode().Perm(); {
		case perm&0o111 != 0:
			mode := int32(0o755)
			kp.Mode = &mode
		case perm&0o044 == 0:
			mode := int32(perm & 0o700)
			kp.Mode = &mode
		}
		items = append(items, kp)
	}
	t.configMaps[name] = cm
	return name, items, nil
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
