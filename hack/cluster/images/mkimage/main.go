// Command mkimage builds a single-layer linux/amd64 container image from files on this machine,
// without a Docker daemon or a registry, and writes it as a docker-archive tarball that
// `ctr -n k8s.io images import` loads into the local cluster's containerd.
//
//	mkimage -ref ergomake.test/testapp:latest -out testapp.tar -entrypoint /testapp -cmd serve \
//	    [-env K=V] [-port 8080/tcp] [-busybox /bin/busybox [-all-applets]] [-user UID:GID] \
//	    [-dir /PATH] [-mode /PATH=4755] [-owner /PATH=UID:GID] HOSTFILE=/PATH ... /LINK->TARGET ...
//
// Files are owned by root and keep their host permission bits unless -mode or -owner says
// otherwise: -mode can set the setuid, setgid and sticky bits (a setuid-root helper), -owner gives a
// file or directory (also one created as a parent) to a user.
//
// The image is reproducible: file times are fixed, so the same inputs give the same digest.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// busyboxApplets are linked to /bin/busybox when -busybox is given: a POSIX shell for
// CMD-SHELL healthchecks plus the tools people reach for inside a pod.
var busyboxApplets = []string{
	"sh", "cat", "echo", "sleep", "wget", "nslookup", "ls", "ps", "env", "grep", "sed", "head",
	"tail", "true", "false", "test", "[", "nc", "ip", "netstat", "hostname", "mkdir", "rm", "touch",
	"id", "kill", "date", "printf", "wc", "timeout", "tr", "cut",
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	ref := fs.String("ref", "", "image reference NAME:TAG (required)")
	out := fs.String("out", "", "output docker-archive tarball (required)")
	busybox := fs.String("busybox", "", "host path of a static busybox to install as /bin/busybox with applet links")
	workdir := fs.String("workdir", "/", "working directory of the image")
	allApplets := fs.Bool("all-applets", false, "with -busybox: link every applet the busybox binary has (busybox --list-full), as the busybox image does")
	runAs := fs.String("user", "", "user the image runs as: UID[:GID] (default root)")
	var entrypoint, cmd, env, ports, dirs, modes, owners list
	fs.Var(&dirs, "dir", "an empty directory /PATH (repeatable)")
	fs.Var(&modes, "mode", "/PATH=OCTAL: the mode of a file or directory, e.g. /usr/bin/newuidmap=4755 (repeatable)")
	fs.Var(&owners, "owner", "/PATH=UID:GID: the owner of a file or directory (repeatable)")
	fs.Var(&entrypoint, "entrypoint", "entrypoint element (repeatable)")
	fs.Var(&cmd, "cmd", "default command element (repeatable)")
	fs.Var(&env, "env", "environment variable K=V (repeatable)")
	fs.Var(&ports, "port", "exposed port such as 8080/tcp (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ref == "" || *out == "" {
		return errors.New("-ref and -out are required")
	}
	r, err := name.ParseReference(*ref)
	if err != nil {
		return fmt.Errorf("bad -ref %q: %w", *ref, err)
	}

	entries := fs.Args()
	if *busybox != "" {
		entries = append(entries, *busybox+"=/bin/busybox")
		links := make([]string, 0, len(busyboxApplets))
		for _, a := range busyboxApplets {
			links = append(links, "/bin/"+a+"->busybox")
		}
		if *allApplets {
			out, err := exec.Command(*busybox, "--list-full").Output()
			if err != nil {
				return fmt.Errorf("%s --list-full: %w", *busybox, err)
			}
			links = links[:0]
			for _, p := range strings.Fields(string(out)) {
				if p != "bin/busybox" {
					links = append(links, "/"+p+"->/bin/busybox")
				}
			}
		}
		entries = append(entries, links...)
	}
	attrs, err := parseAttrs(modes, owners)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if !strings.HasPrefix(d, "/") {
			return fmt.Errorf("bad -dir %q: want /PATH", d)
		}
		entries = append(entries, d+"/")
	}
	layerData, err := buildLayer(entries, attrs)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerData)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.Entrypoint = entrypoint
	cf.Config.Cmd = cmd
	cf.Config.WorkingDir = *workdir
	cf.Config.User = *runAs
	cf.Config.Env = append([]string{"PATH=/bin:/usr/bin:/sbin:/usr/sbin"}, env...)
	if len(ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range ports {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := tarball.WriteToFile(tmp, r, img); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	digest, err := img.ConfigName()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", r.Name(), digest, *out)
	return nil
}

// attr is what -mode and -owner set for a path of the image.
type attr struct {
	mode     int64 // -1: unchanged
	uid, gid int   // -1: root
	used     bool
}

// parseAttrs reads -mode /PATH=OCTAL and -owner /PATH=UID:GID into attributes by clean path
// (without the leading slash, as tar names are).
func parseAttrs(modes, owners []string) (map[string]*attr, error) {
	out := map[string]*attr{}
	get := func(p string) (*attr, error) {
		if !strings.HasPrefix(p, "/") || path.Clean(p) == "/" {
			return nil, fmt.Errorf("bad path %q: want /PATH", p)
		}
		n := strings.TrimPrefix(path.Clean(p), "/")
		if out[n] == nil {
			out[n] = &attr{mode: -1, uid: -1, gid: -1}
		}
		return out[n], nil
	}
	for _, m := range modes {
		p, v, _ := strings.Cut(m, "=")
		mode, err := strconv.ParseInt(v, 8, 64)
		if err != nil || mode < 0 || mode > 0o7777 {
			return nil, fmt.Errorf("bad -mode %q: want /PATH=OCTAL such as /usr/bin/newuidmap=4755", m)
		}
		a, err := get(p)
		if err != nil {
			return nil, fmt.Errorf("bad -mode %q: %w", m, err)
		}
		a.mode = mode
	}
	for _, o := range owners {
		p, v, _ := strings.Cut(o, "=")
		u, g, ok := strings.Cut(v, ":")
		uid, err1 := strconv.Atoi(u)
		gid, err2 := strconv.Atoi(g)
		if !ok || err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return nil, fmt.Errorf("bad -owner %q: want /PATH=UID:GID", o)
		}
		a, err := get(p)
		if err != nil {
			return nil, fmt.Errorf("bad -owner %q: %w", o, err)
		}
		a.uid, a.gid = uid, gid
	}
	return out, nil
}

// buildLayer writes one tar layer: HOST=/PATH copies a host file, /LINK->TARGET makes a symlink,
// /PATH/ an empty directory. Parent directories and the usual mount points (/tmp, /etc, /proc,
// /sys, /dev) are created. attrs (from parseAttrs) change modes and owners; each must name a path
// of the layer.
func buildLayer(entries []string, attrs map[string]*attr) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write := func(h *tar.Header) error {
		if a := attrs[strings.TrimSuffix(h.Name, "/")]; a != nil {
			a.used = true
			if a.mode >= 0 {
				h.Mode = a.mode
			}
			if a.uid >= 0 {
				h.Uid, h.Gid = a.uid, a.gid
			}
		}
		return tw.WriteHeader(h)
	}
	mtime := time.Unix(0, 0)
	dirs := map[string]bool{}
	mkdirs := func(p string) error {
		dir := path.Dir(path.Clean("/" + p))
		var parts []string
		for d := dir; d != "/"; d = path.Dir(d) {
			parts = append(parts, d)
		}
		sort.Strings(parts)
		for _, d := range parts {
			n := strings.TrimPrefix(d, "/") + "/"
			if dirs[n] {
				continue
			}
			dirs[n] = true
			mode := int64(0o755)
			if n == "tmp/" {
				mode = 0o1777
			}
			if err := write(&tar.Header{Typeflag: tar.TypeDir, Name: n, Mode: mode, ModTime: mtime}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range []string{"/tmp/", "/etc/", "/proc/", "/sys/", "/dev/", "/bin/"} {
		if err := mkdirs(d + "x"); err != nil {
			return nil, err
		}
	}
	for _, e := range entries {
		if link, target, ok := strings.Cut(e, "->"); ok {
			if err := mkdirs(link); err != nil {
				return nil, err
			}
			h := &tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(path.Clean(link), "/"), Linkname: target, Mode: 0o777, ModTime: mtime}
			if err := write(h); err != nil {
				return nil, err
			}
			continue
		}
		if strings.HasPrefix(e, "/") && strings.HasSuffix(e, "/") { // an empty directory
			if err := mkdirs(e + "x"); err != nil {
				return nil, err
			}
			continue
		}
		src, dst, ok := strings.Cut(e, "=")
		if !ok || !strings.HasPrefix(dst, "/") {
			return nil, fmt.Errorf("bad file argument %q: want HOSTFILE=/PATH or /LINK->TARGET", e)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(src)
		if err != nil {
			return nil, err
		}
		if err := mkdirs(dst); err != nil {
			return nil, err
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path.Clean(dst), "/"), Mode: int64(st.Mode().Perm()), Size: int64(len(data)), ModTime: mtime}
		if err := write(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	for n, a := range attrs {
		if !a.used {
			return nil, fmt.Errorf("-mode or -owner names /%s, which is not in the image", n)
		}
	}
	return buf.Bytes(), nil
}
