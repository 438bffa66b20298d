package translate

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ergomake/ergomake/internal/compose"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Bind mounts (ARCHITECTURE.md decisions 9, 13 and 15).
//
// A bind mount's source is a path of the user's machine: it is never mounted from a node (no
// hostPath). A small regular file or folder is shipped as a read-only snapshot: a ConfigMap, or a
// Secret when it holds a file that looks private (looksPrivate). Anything else is a clear error
// naming the compose file, the service and the key: the Docker socket, system paths (/, /proc,
// /sys, /dev...), sockets, FIFOs and devices, and what is too large. /etc/localtime and
// /etc/timezone mounted read-only are dropped with a warning: the container keeps the cluster's
// time zone.
//
// Symbolic links are never followed out of the project: a link (the mount's source itself, or
// one inside a mounted folder) whose target is outside both the project directory and the mounted
// folder is an error naming the link. Links to folders inside a mounted folder are skipped with
// a warning, as are dangling links and special files (sockets, FIFOs) found inside a folder.

// maxBindEntries bounds the entries walked in one bind-mounted folder.
const maxBindEntries = 5000

// timeZonePaths are dropped when mounted read-only (the cluster's time zone is kept).
var timeZonePaths = map[string]bool{"/etc/localtime": true, "/etc/timezone": true}

// systemTrees are folders of the user's machine that mean nothing in the cluster, nor does
// anything below them; systemRoots are such folders themselves (a file below may be shipped).
var (
	systemTrees = []string{"/proc", "/sys", "/dev", "/run", "/var/run", "/boot", "/lib/modules", "/var/lib/docker"}
	systemRoots = []string{"/", "/tmp", "/var/tmp", "/etc", "/home", "/root", "/usr", "/var", "/opt", "/lib", "/bin", "/sbin",
		"/mnt", "/media", "/srv", "/Users", "/private", "/Volumes", "/System", "/Library"}
)

func isSystemPath(p string) bool {
	for _, n := range systemTrees {
		if p == n || strings.HasPrefix(p, n+"/") {
			return true
		}
	}
	for _, n := range systemRoots {
		if p == n {
			return true
		}
	}
	return false
}

func isDockerSocket(p string) bool {
	return strings.HasSuffix(p, "/docker.sock") || strings.HasSuffix(p, "/podman.sock") || strings.HasSuffix(p, "/containerd.sock")
}

// looksPrivate tells whether a file must go into a Secret rather than a ConfigMap: env files,
// keys and certificates' private parts, credential files, and files only their owner may read.
func looksPrivate(name string, mode fs.FileMode) bool {
	base := strings.ToLower(filepath.Base(name))
	switch {
	case strings.HasPrefix(base, ".env"), strings.HasSuffix(base, ".env"):
		return true
	case strings.HasPrefix(base, "id_rsa"), strings.HasPrefix(base, "id_dsa"), strings.HasPrefix(base, "id_ecdsa"), strings.HasPrefix(base, "id_ed25519"):
		return true
	}
	switch filepath.Ext(base) {
	case ".pem", ".key", ".p12", ".pfx", ".jks", ".keystore", ".kdbx", ".gpg", ".asc", ".ppk":
		return true
	}
	switch base {
	case ".netrc", ".pgpass", ".htpasswd", ".npmrc", ".pypirc", ".git-credentials", "credentials", "secrets.yaml", "secrets.yml", "secrets.json":
		return true
	}
	return mode.Perm()&0o044 == 0 // readable by its owner only (0600, 0400)
}

// within tells whether p is root or below it (both cleaned, absolute).
func within(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, "../")
}

// projectDirs are the project directory as written and with its symlinks resolved.
func (t *translator) projectDirs() []string {
	dirs := []string{t.p.WorkingDir}
	if r, err := t.fs.EvalSymlinks(t.p.WorkingDir); err == nil && r != t.p.WorkingDir {
		dirs = append(dirs, r)
	}
	return dirs
}

// allowedTarget tells whether a link's resolved target may be followed: it is inside the project
// or inside the mounted folder (root, resolved).
func (t *translator) allowedTarget(target, root string) bool {
	if root != "" && within(root, target) {
		return true
	}
	for _, d := range t.projectDirs() {
		if d != "" && within(d, target) {
			return true
		}
	}
	return false
}

func (t *translator) bindMount(s types.ServiceConfig, index int, v types.ServiceVolumeConfig) (*v1alpha1.VolumeMount, error) {
	src := v.Source
	at := fmt.Sprintf("volumes.%d", index)
	fail := func(format string, args ...any) error {
		return t.errorfAt(s.Name, "volumes", at, format, args...)
	}
	if v.Bind != nil && v.Bind.Propagation != "" {
		t.warn(s.Name, "volumes", "%s: propagation %q is not supported; ignored", v.Target, v.Bind.Propagation)
	}
	if timeZonePaths[src] && v.ReadOnly {
		t.warn(s.Name, "volumes", "%s: not mounted; the container keeps the cluster's time zone (set the TZ variable to choose one)", src)
		return nil, nil
	}
	if src == "/dev/null" {
		// compose's way to hide a file of the image: an empty file does the same
		name := objectName("bind", "null")
		t.configMaps[name] = &corev1.ConfigMap{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: t.ns, Labels: t.labels(),
				Annotations: map[string]string{"ergomake.dev/source": src}},
			Data: map[string]string{"null": ""},
		}
		t.warn(s.Name, "volumes", "%s: %s is an empty read-only file in the cluster", src, v.Target)
		return &v1alpha1.VolumeMount{Type: v1alpha1.MountConfigMap, Source: name, Target: v.Target, SubPath: "null",
			ReadOnly: true, Items: []v1alpha1.KeyPath{{Key: "null", Path: "null"}}}, nil
	}
	if isDockerSocket(src) {
		return nil, fail("%s: the container engine's socket of your machine cannot be mounted in the cluster, which has no Docker engine for the service to drive; remove this mount (or put the service behind a profile)", src)
	}
	if isSystemPath(filepath.Clean(src)) {
		return nil, fail("%s is a system path of your machine: it means nothing in the cluster and is never mounted from a node; remove this mount", src)
	}

	resolved, err := t.fs.EvalSymlinks(src)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fail("cannot read %s: %v", src, errMsg(err))
		}
		if v.Bind != nil && !bool(v.Bind.CreateHostPath) {
			return nil, fail("%s does not exist (create_host_path: false)", src)
		}
		t.warn(s.Name, "volumes", "%s does not exist: %s starts as an empty directory in the cluster, and what is written there stays in the cluster", t.rel(src), v.Target)
		return &v1alpha1.VolumeMount{Type: v1alpha1.MountEmptyDir, Target: v.Target, ReadOnly: v.ReadOnly}, nil
	}
	if resolved != filepath.Clean(src) && t.inProject(src) && !t.allowedTarget(resolved, "") {
		return nil, fail("%s is a symbolic link to %s, outside the project: ergomake never follows links out of the project; mount %s itself if the service needs it", t.rel(src), resolved, resolved)
	}
	fi, err := t.fs.Stat(resolved)
	if err != nil {
		return nil, fail("cannot read %s: %v", src, errMsg(err))
	}
	if !fi.IsDir() {
		if err := compose.CheckFileFS(t.fs, resolved, t.opts.MaxConfigMapBytes); err != nil {
			if fi.Mode().IsRegular() {
				return nil, fail("%s %v: mount a named volume instead", t.rel(src), err)
			}
			return nil, fail("%s %v: only files and folders can be shipped to the cluster", t.rel(src), err)
		}
	} else {
		empty, err := isEmptyDir(t.fs, resolved)
		if err != nil {
			return nil, fail("cannot read %s: %v", src, errMsg(err))
		}
		if empty {
			t.warn(s.Name, "volumes", "%s is empty: %s starts as an empty directory in the cluster, and what is written there stays in the cluster", t.rel(src), v.Target)
			return &v1alpha1.VolumeMount{Type: v1alpha1.MountEmptyDir, Target: v.Target, ReadOnly: v.ReadOnly}, nil
		}
	}

	obj, kind, items, err := t.bindObject(s, at, src, resolved, fi)
	if err != nil {
		return nil, err
	}
	m := &v1alpha1.VolumeMount{Type: v1alpha1.MountConfigMap, Source: obj, Target: v.Target, ReadOnly: v.ReadOnly, Items: items}
	if kind == "Secret" {
		m.Type = v1alpha1.MountSecret
	}
	if !fi.IsDir() {
		// one file: mounted by subPath; its item keeps its mode (an executable entrypoint script)
		m.Items[0].Path = m.Items[0].Key
		m.SubPath = m.Items[0].Key
	}
	where := ""
	if !t.inProject(src) {
		where = " (it is outside the project directory)"
	}
	if v.ReadOnly {
		t.warn(s.Name, "volumes", "%s is shipped as a snapshot (%s %s): later edits on your machine do not reach the container%s", t.rel(src), kind, obj, where)
	} else {
		t.warn(s.Name, "volumes", "%s is shipped as a read-only snapshot (%s %s): later edits do not reach the container and the container cannot write there%s", t.rel(src), kind, obj, where)
	}
	return m, nil
}

// bindFile is one file of a bind mount: its path in the mount and where to read it.
type bindFile struct {
	rel  string // slash-separated path in the mount
	read string // the file to read (a link's target)
	info fs.FileInfo
}

// bindObject ships a file or folder (src, resolved: its symlinks resolved) as a ConfigMap, or as a
// Secret when one of its files looks private, shared by every mount of the same path, and returns
// its name, its kind and the key → path items.
func (t *translator) bindObject(s types.ServiceConfig, at, src, resolved string, fi fs.FileInfo) (string, string, []v1alpha1.KeyPath, error) {
	fail := func(format string, args ...any) error {
		return t.errorfAt(s.Name, "volumes", at, format, args...)
	}
	var files []bindFile
	if fi.IsDir() {
		var skipped []string
		entries := 0
		err := compose.WalkDir(t.fs, resolved, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if entries++; entries > maxBindEntries {
				return errTooManyEntries
			}
			r, _ := filepath.Rel(resolved, path)
			if d.IsDir() {
				if d.Name() == ".git" && path != resolved {
					return filepath.SkipDir
				}
				return nil
			}
			shown := t.rel(filepath.Join(src, r))
			read := path
			if d.Type()&fs.ModeSymlink != 0 {
				target, err := t.fs.EvalSymlinks(path)
				if err != nil {
					skipped = append(skipped, shown+" (a dangling link)")
					return nil
				}
				if !t.allowedTarget(target, resolved) {
					return &linkError{link: shown, target: target}
				}
				read = target
			}
			info, err := t.fs.Stat(read)
			if err != nil {
				return err
			}
			switch {
			case info.IsDir():
				skipped = append(skipped, shown+" (a link to a folder)")
				return nil
			case !info.Mode().IsRegular():
				skipped = append(skipped, shown+" ("+specialKind(info.Mode())+")")
				return nil
			}
			files = append(files, bindFile{rel: filepath.ToSlash(r), read: read, info: info})
			return nil
		})
		var le *linkError
		switch {
		case errors.As(err, &le):
			return "", "", nil, fail("%s is a symbolic link to %s, outside the project: ergomake never follows links out of the project; copy what the service needs into the project, or mount %s itself", le.link, le.target, le.target)
		case errors.Is(err, errTooManyEntries):
			return "", "", nil, fail("%s cannot be shipped to the cluster: it has more than %d files and folders; mount a named volume instead, or only the files the service needs", t.rel(src), maxBindEntries)
		case err != nil:
			return "", "", nil, fail("cannot read %s: %v", t.rel(src), errMsg(err))
		}
		if len(skipped) > 0 {
			sort.Strings(skipped)
			t.warn(s.Name, "volumes", "%s: not shipped: %s", t.rel(src), strings.Join(skipped, ", "))
		}
	} else {
		files = []bindFile{{rel: filepath.Base(src), read: resolved, info: fi}}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })

	kind := "ConfigMap"
	var total int64
	for _, f := range files {
		total += f.info.Size() + int64(len(f.rel)) // Kubernetes counts keys and values
		if looksPrivate(f.rel, f.info.Mode()) {
			kind = "Secret"
		}
	}
	if total > t.opts.MaxConfigMapBytes {
		return "", "", nil, fail("%s is too large to ship to the cluster as a %s (%s; the limit is %s): mount a named volume instead, or only the files the service needs",
			t.rel(src), kind, humanBytes(total), humanBytes(t.opts.MaxConfigMapBytes))
	}

	name := truncate(objectName("bind", strings.TrimSuffix(filepath.Base(src), filepath.Ext(src))+"-"+shortHash(t.rel(src))), 63)
	meta := metav1.ObjectMeta{Name: name, Namespace: t.ns, Labels: t.labels(),
		Annotations: map[string]string{"ergomake.dev/source": t.rel(src)}}
	data := map[string][]byte{}
	var items []v1alpha1.KeyPath
	budget := t.opts.MaxConfigMapBytes
	for _, f := range files {
		b, err := t.fs.ReadFile(f.read, budget)
		if err != nil {
			return "", "", nil, fail("%s %v", t.rel(filepath.Join(src, filepath.FromSlash(f.rel))), err)
		}
		budget -= int64(len(b))
		key := dataKey(strings.ReplaceAll(f.rel, "/", "__"))
		for i := 2; data[key] != nil; i++ {
			key = dataKey(fmt.Sprintf("%s_%d", strings.ReplaceAll(f.rel, "/", "__"), i))
		}
		data[key] = b
		kp := v1alpha1.KeyPath{Key: key, Path: f.rel}
		// keep what matters of the file's mode (not the umask's variations): executable scripts
		// stay executable, private files (keys readable by their owner only) stay private
		switch perm := f.info.Mode().Perm(); {
		case perm&0o111 != 0:
			mode := int32(0o755)
			kp.Mode = &mode
		case perm&0o044 == 0:
			mode := int32(perm & 0o700)
			kp.Mode = &mode
		}
		items = append(items, kp)
	}

	if kind == "Secret" {
		t.secrets[name] = &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: meta,
			Type:       corev1.SecretTypeOpaque,
			Data:       data,
		}
		return name, kind, items, nil
	}
	cm := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}, ObjectMeta: meta}
	for k, b := range data {
		if utf8.Valid(b) {
			if cm.Data == nil {
				cm.Data = map[string]string{}
			}
			cm.Data[k] = string(b)
		} else {
			if cm.BinaryData == nil {
				cm.BinaryData = map[string][]byte{}
			}
			cm.BinaryData[k] = b
		}
	}
	t.configMaps[name] = cm
	return name, kind, items, nil
}

// linkError is a symbolic link inside a mounted folder that points out of the project.
type linkError struct{ link, target string }

func (e *linkError) Error() string { return e.link + " is a link to " + e.target }

var errTooManyEntries = errors.New("too many entries")

// specialKind names what a file that is neither regular nor a folder is.
func specialKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0, m&fs.ModeCharDevice != 0:
		return "a device"
	}
	return "not a regular file"
}
