package install

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ergomake/ergomake/config"
)

// The in-cluster builder: BuildKit's daemon, which builds compose services' images and pushes them
// to the in-cluster registry. It listens on its pod's loopback only; the CLI reaches it through a
// port-forward tunnel to BuilderPort of a pod matching BuilderSelector.
const (
	// BuilderName names the builder's ConfigMap, PersistentVolumeClaim and Deployment.
	BuilderName = "ergomake-builder"
	// BuilderPort is buildkitd's TCP port on its pod's 127.0.0.1.
	BuilderPort = 1234
	// BuilderSelector selects the builder's pods.
	BuilderSelector = "app.kubernetes.io/name=" + BuilderName
	// BuildKitVersion is the BuildKit release of the default builder images.
	BuildKitVersion = "v0.34.2"
	// DefaultBuilderImage is BuildKit's official image, run privileged.
	DefaultBuilderImage = "moby/buildkit:" + BuildKitVersion
	// DefaultRootlessBuilderImage is BuildKit's official rootless image (--builder-mode rootless).
	DefaultRootlessBuilderImage = "moby/buildkit:" + BuildKitVersion + "-rootless"
)

// BuilderMode is how the builder runs, or that there is none.
type BuilderMode string

const (
	// BuilderPrivileged runs buildkitd in a privileged container (the default): it works on any
	// cluster that admits privileged pods in the install namespace.
	BuilderPrivileged BuilderMode = "privileged"
	// BuilderRootless runs BuildKit's rootless image as user 1000, with seccomp and AppArmor
	// unconfined and no process sandbox (BuildKit's documented set-up for Kubernetes), for
	// clusters that refuse privileged pods. The image's entrypoint is `rootlesskit buildkitd`:
	// RootlessKit maps the user's subordinate ids with the setuid-root newuidmap/newgidmap, so
	// privilege escalation must be allowed (allowPrivilegeEscalation: true), and the default
	// seccomp profile would refuse it the user namespace. The local cluster builds such
	// an image from source (hack/cluster/README.md, test/e2e/rootless).
	BuilderRootless BuilderMode = "rootless"
	// BuilderNone installs no builder: services with build: cannot be built in the cluster.
	BuilderNone BuilderMode = "none"
)

// rootless: BuildKit's rootless image runs as this user, with its state under its home.
const (
	rootlessUID   = 1000
	rootlessState = "/home/user/.local/share/buildkit"
	privState     = "/var/lib/buildkit"
)

// DefaultBuilderImageFor is the builder image used when none is given.
func DefaultBuilderImageFor(mode BuilderMode) string {
	if mode == BuilderRootless {
		return DefaultRootlessBuilderImage
	}
	return DefaultBuilderImage
}

// builderObjects are the builder's ConfigMap, PersistentVolumeClaim (unless opts says emptyDir) and
// Deployment, set up for opts (defaults filled in); none with BuilderNone.
func builderObjects(opts Options) ([]*unstructured.Unstructured, error) {
	if opts.BuilderMode == BuilderNone {
		return nil, nil
	}
	files := []string{"builder/configmap.yaml", "builder/pvc.yaml", "builder/deployment.yaml"}
	if opts.BuilderStorage == StorageEmptyDir {
		files = []string{files[0], files[2]}
	}
	out, err := decodeFiles(config.Builder, files...)
	if err != nil {
		return nil, err
	}
	for _, u := range out {
		switch u.GetKind() {
		case "ConfigMap":
			err = unstructured.SetNestedField(u.Object, buildkitdConfig(opts), "data", "buildkitd.toml")
		case "Deployment":
			err = setBuilderDeployment(u, opts)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return out, nil
}

// MirrorFor is where the builder looks for images of host in the in-cluster registry reg: at its
// root for docker.io (official images as library/NAME, as docker.io names them), under host/
// otherwise (ergomake.test/testapp is reg/ergomake.test/testapp).
func MirrorFor(host, reg string) string {
	if host == "docker.io" {
		return reg
	}
	return reg + "/" + host
}

// buildkitdConfig is the builder's buildkitd.toml: the OCI worker, the in-cluster registry over
// plain HTTP, and a mirror in it for each of opts.BuilderMirrors.
func buildkitdConfig(opts Options) string {
	reg := registryUpstream(opts.Namespace)
	var b strings.Builder
	b.WriteString("# written by ergomake install\n")
	b.WriteString("[worker.oci]\n  enabled = true\n  gc = true\n\n[worker.containerd]\n  enabled = false\n\n")
	fmt.Fprintf(&b, "# the in-cluster registry: built images are pushed there over plain HTTP\n[registry.%s]\n  http = true\n", strconv.Quote(reg))
	mirrors := append([]string(nil), opts.BuilderMirrors...)
	sort.Strings(mirrors)
	for _, host := range mirrors {
		fmt.Fprintf(&b, "\n[registry.%s]\n  mirrors = [%s]\n", strconv.Quote(host), strconv.Quote(MirrorFor(host, reg)))
	}
	return b.String()
}

// ValidMirrorHost checks a --builder-mirror value: a registry host name with an optional port.
func ValidMirrorHost(h string) error {
	name, port, hasPort := strings.Cut(h, ":")
	if hasPort {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("builder mirror %q: %q is not a port", h, port)
		}
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 || strings.Contains(h, "/") {
		return fmt.Errorf("builder mirror %q: want a registry host such as docker.io or registry.example.com:5000", h)
	}
	return nil
}

func setBuilderDeployment(u *unstructured.Unstructured, opts Options) error {
	rootless := opts.BuilderMode == BuilderRootless
	state := privState
	if rootless {
		state = rootlessState
	}
	err := setContainer(u, "buildkitd", func(c map[string]any) {
		c["image"] = opts.BuilderImage
		args := []any{"--addr", "tcp://127.0.0.1:" + strconv.Itoa(BuilderPort), "--config", "/etc/buildkit/buildkitd.toml", "--root", state}
		if rootless {
			args = append(args, "--oci-worker-no-process-sandbox")
			c["securityContext"] = map[string]any{
				"runAsUser":  int64(rootlessUID),
				"runAsGroup": int64(rootlessUID),
				// RootlessKit's newuidmap/newgidmap are setuid root: said outright, so that a policy
				// defaulting it to false refuses the pod instead of crash-looping it
				"allowPrivilegeEscalation": true,
				"seccompProfile":           map[string]any{"type": "Unconfined"},
				"appArmorProfile":          map[string]any{"type": "Unconfined"},
			}
		}
		c["args"] = args
		mounts, _ := c["volumeMounts"].([]any)
		for _, m := range mounts {
			if mm, ok := m.(map[string]any); ok && mm["name"] == "cache" {
				mm["mountPath"] = state
			}
		}
	})
	if err != nil {
		return err
	}
	if rootless { // the cache volume must be writable by the rootless user
		if err := unstructured.SetNestedField(u.Object, int64(rootlessUID), "spec", "template", "spec", "securityContext", "fsGroup"); err != nil {
			return err
		}
	}
	if err := setRevision(u, opts.BuilderRevision); err != nil {
		return err
	}
	if opts.BuilderStorage != StorageEmptyDir {
		return nil
	}
	volumes, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "volumes")
	for i, v := range volumes {
		if m, ok := v.(map[string]any); ok && m["name"] == "cache" {
			volumes[i] = map[string]any{"name": "cache", "emptyDir": map[string]any{}}
		}
	}
	return unstructured.SetNestedSlice(u.Object, volumes, "spec", "template", "spec", "volumes")
}

// builderRefusedHint says what to do when the cluster refuses the builder's pods (why: the
// Deployment's ReplicaFailure message). Pod Security baseline and restricted refuse both modes: the
// rootless one needs seccomp and AppArmor Unconfined.
func builderRefusedHint(namespace string, mode BuilderMode) func(why string) string {
	return func(why string) string {
		if strings.Contains(why, "violates PodSecurity") {
			return fmt.Sprintf("namespace %s enforces a Pod Security level that refuses the builder in either mode (rootless needs seccomp and AppArmor Unconfined): "+
				"label it pod-security.kubernetes.io/enforce=privileged, or install with --builder-mode none and push images built elsewhere to your registry (--registry)", namespace)
		}
		if mode == BuilderRootless {
			return "install with --builder-mode none and push images built elsewhere to your registry (--registry)"
		}
		return "install with --builder-mode rootless, or with --builder-mode none and push images built elsewhere to your registry (--registry)"
	}
}
