//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/internal/testutil/cluster"
)

// A second registry, the user's for `--registry`: the harness's registry image (make
// registry-image: distribution's registry with htpasswd basic auth) in a test namespace, behind a
// NodePort Service on the node's address, which the builder's pod and this test both reach. It
// serves plain HTTP (`--registry http://...`): the builder pushes to it so, and the node's
// container runtime, which pulls over plain HTTP from loopback addresses only, reaches it through
// a loopback relay of this test (the local cluster's single node is this host).

// userRegistry is a running second registry.
type userRegistry struct {
	t          *testing.T
	host       string // node address:NodePort
	user, pass string
}

// e2eRegistryImage is the registry image the harness builds; ERGOMAKE_E2E_REGISTRY_IMAGE names
// another build of hack/cluster/registry.
func e2eRegistryImage() string {
	if img := os.Getenv("ERGOMAKE_E2E_REGISTRY_IMAGE"); img != "" {
		return img
	}
	return "ergomake.test/ergomake-registry:dev"
}

// startUserRegistry runs a registry with basic auth in a fresh namespace. size, when not empty,
// is the size of the tmpfs it stores images on (a full registry); else an emptyDir on disk.
func startUserRegistry(t *testing.T, cs kubernetes.Interface, size string) *userRegistry {
	t.Helper()
	ns := cluster.Namespace(t, cs, "e2e-userreg")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := &userRegistry{t: t, user: "dev", pass: regRandomHex(t, 8)}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "registry"}, Data: map[string]string{
		"htpasswd": r.user + ":" + string(hash) + "\n",
		"config.yml": `version: 0.1
log: {level: info, formatter: text}
storage:
  filesystem: {rootdirectory: /var/lib/registry}
http: {addr: ":5000"}
auth:
  htpasswd: {realm: e2e, path: /etc/distribution/htpasswd}
`}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	storage := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	if size != "" {
		// a memory-backed emptyDir is a tmpfs of sizeLimit: writes past it fail with ENOSPC
		storage.EmptyDir = &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr.To(resource.MustParse(size))}
	}
	labels := map[string]string{"app": "registry"}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "registry", Labels: labels},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			AutomountServiceAccountToken:  ptr.To(false),
			SecurityContext:               &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532), FSGroup: ptr.To[int64](65532)},
			Containers: []corev1.Container{{
				Name:            "registry",
				Image:           e2eRegistryImage(),
				ImagePullPolicy: corev1.PullIfNotPresent,
				Args:            []string{"serve", "/etc/distribution/config.yml"},
				Env:             []corev1.EnvVar{{Name: "OTEL_TRACES_EXPORTER", Value: "none"}},
				Ports:           []corev1.ContainerPort{{ContainerPort: 5000}},
				ReadinessProbe: &corev1.Probe{ // /v2/ answers 401 without credentials
					ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(5000)}},
					PeriodSeconds: 1,
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/distribution"}, {Name: "storage", MountPath: "/var/lib/registry"}},
			}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "registry"}}}},
				{Name: "storage", VolumeSource: storage},
			},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "registry"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: labels,
			Ports: []corev1.ServicePort{{Port: 5000, TargetPort: intstr.FromInt32(5000)}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// An image built before the harness's registry had htpasswd auth exits at once: say so.
	cluster.Eventually(t, 90*time.Second, 500*time.Millisecond, "the registry pod to be ready", func(ctx context.Context) (bool, string, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "registry", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.Ready {
				return true, "", nil
			}
			if c.RestartCount > 0 || c.State.Terminated != nil {
				logs, _ := cs.CoreV1().Pods(ns).GetLogs("registry", &corev1.PodLogOptions{Previous: c.RestartCount > 0}).DoRaw(ctx)
				if strings.Contains(string(logs), "no access controller registered with name: htpasswd") {
					return false, "", fmt.Errorf("the registry image %s has no htpasswd auth: rebuild it from this tree with `make registry-image` (or name another build with ERGOMAKE_E2E_REGISTRY_IMAGE)", e2eRegistryImage())
				}
			}
		}
		return false, string(p.Status.Phase), nil
	})
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) == 0 {
		t.Fatalf("listing nodes: %v", err)
	}
	for _, a := range nodes.Items[0].Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			r.host = net.JoinHostPort(a.Address, fmt.Sprint(svc.Spec.Ports[0].NodePort))
		}
	}
	if r.host == "" {
		t.Fatalf("node %s has no InternalIP", nodes.Items[0].Name)
	}
	cluster.Eventually(t, time.Minute, 200*time.Millisecond, "the registry to answer on "+r.host, func(ctx context.Context) (bool, string, error) {
		code, _, err := r.get(ctx, "/v2/", false)
		return code == http.StatusUnauthorized, fmt.Sprintf("%d %v", code, err), nil
	})
	return r
}

// get asks the registry's API, with the credentials when auth.
func (r *userRegistry) get(ctx context.Context, path string, auth bool) (int, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.host+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json")
	if auth {
		req.SetBasicAuth(r.user, r.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil
}

// dockerConfig writes a docker config folder holding the registry's credentials under key.
func (r *userRegistry) dockerConfig(key string) string {
	dir := r.t.TempDir()
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{key: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(r.user + ":" + r.pass))}}})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		r.t.Fatal(err)
	}
	return dir
}

// loopbackRelay relays 127.0.0.1:port (on this host, the node) to the registry, for the node's
// container runtime, which pulls over plain HTTP only from loopback addresses.
func (r *userRegistry) loopbackRelay() string {
	r.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.DialTimeout("tcp", r.host, 10*time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	return l.Addr().String()
}

// setEnv sets (or replaces) an environment variable of the project's ergomake runs.
func (p *upProject) setEnv(kv string) {
	p.env = append(p.env, kv) // os/exec keeps the last value of a key
}

// TestBuildUserRegistry: with --registry, images are pushed to the user's registry with the
// user's docker credentials (none: the push is refused, exit 1); `up` creates the pull secret of
// those credentials in the environment's namespace and runs the image by digest; a pod of that
// image by digest, pulled with the secret's credentials, runs what was built.
func TestBuildUserRegistry(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-userreg", "services:\n  app:\n    build: ./app\n")
	needBuilder(t, p)
	reg := startUserRegistry(t, p.cs, "")
	nonce := regRandomHex(t, 8)
	writeFiles(t, p.dir, map[string]string{
		"app/Dockerfile": "FROM ergomake.test/testapp:latest\nRUN echo " + nonce + " > /marker\nENV SERVICE=app PORTS=8080\n",
	})
	ref := "http://" + reg.host + "/proj"

	// 1. Without credentials the registry refuses the push.
	p.setEnv("DOCKER_CONFIG=" + t.TempDir())
	_, stderr, code := p.run(buildTimeout, "build", "--registry", ref)
	if code != 1 || !strings.Contains(strings.ToLower(stderr), "401 unauthorized") {
		t.Fatalf("build without credentials exited %d, want 1 with the registry's 401\n%s", code, stderr)
	}

	// 2. With the user's credentials: pushed, by digest; the registry has it, for them only.
	p.setEnv("DOCKER_CONFIG=" + reg.dockerConfig(reg.host))
	var results []struct{ Service, Image, Digest string }
	stderr = p.runJSON(buildTimeout, &results, "build", "--registry", ref)
	if !strings.Contains(stderr, "plain HTTP") {
		t.Errorf("no word that the push goes over plain HTTP:\n%s", stderr)
	}
	if len(results) != 1 {
		t.Fatalf("build -o json: %+v, want one image", results)
	}
	repo, d, ok := strings.Cut(results[0].Image, "@")
	if !ok || d != results[0].Digest || !strings.HasPrefix(repo, reg.host+"/proj/") {
		t.Fatalf("built %+v, want an image of %s/proj by digest", results[0], reg.host)
	}
	repo = strings.TrimPrefix(repo, reg.host+"/")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code, _, err := reg.get(ctx, "/v2/"+repo+"/manifests/"+d, false); code != http.StatusUnauthorized {
		t.Errorf("the manifest without credentials: %d %v, want 401", code, err)
	}
	if code, h, err := reg.get(ctx, "/v2/"+repo+"/manifests/"+d, true); code != http.StatusOK || h.Get("Docker-Content-Digest") != d {
		t.Fatalf("the manifest %s@%s in the registry: %d %v %v", repo, d, code, h, err)
	}

	// 3. up (--keep: the environment stays when up fails): the pull secret of the user's
	// credentials in the environment's namespace, the service's pods run the image by digest with
	// it. The node cannot pull it, its container runtime speaking plain HTTP to loopback addresses
	// only: up fails saying so, naming the image by digest. Step 4 pulls it through loopback.
	_, stderr, code = p.run(buildTimeout, "up", "--registry", ref, "--keep", "--wait-timeout", "2m")
	if code != 1 || !strings.Contains(stderr, "cannot pull image \""+reg.host+"/proj/") || !strings.Contains(stderr, "server gave HTTP response to HTTPS client") {
		t.Fatalf("up exited %d, want 1: the node cannot pull from a plain HTTP registry off loopback\n%s", code, stderr)
	}
	secretName := "ergomake-pull-" + strings.NewReplacer(":", "-").Replace(reg.host)
	secret, err := p.cs.CoreV1().Secrets(p.ns).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		list, _ := p.cs.CoreV1().Secrets(p.ns).List(ctx, metav1.ListOptions{})
		var names []string
		for _, s := range list.Items {
			names = append(names, s.Name)
		}
		t.Fatalf("the pull secret: %v (secrets in %s: %v; environment's pull secrets %v)", err, p.ns, names, p.envSpec().Spec.ImagePullSecrets)
	}
	pods, err := p.cs.CoreV1().Pods(p.ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("app's pods: %v, %v", pods, err)
	}
	if pod := pods.Items[0].Spec; len(pod.ImagePullSecrets) != 1 || pod.ImagePullSecrets[0].Name != secretName || !strings.HasPrefix(pod.Containers[0].Image, reg.host+"/proj/") || !strings.Contains(pod.Containers[0].Image, "@sha256:") {
		t.Errorf("app's pod runs %s with pull secrets %v: want its image by digest, with %s", pod.Containers[0].Image, pod.ImagePullSecrets, secretName)
	}
	var auths struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(secret.Data[corev1.DockerConfigJsonKey], &auths); err != nil || secret.Type != corev1.SecretTypeDockerConfigJson {
		t.Fatalf("secret %s of type %s: %v", secretName, secret.Type, err)
	}
	if a := auths.Auths[reg.host]; len(auths.Auths) != 1 || a.Username != reg.user || a.Password != reg.pass {
		t.Errorf("the pull secret holds %v, want the user's credentials for %s only", auths.Auths, reg.host)
	}
	env := p.envSpec()
	upDigest := builtDigests(env)["app"]
	if len(env.Spec.ImagePullSecrets) != 1 || env.Spec.ImagePullSecrets[0] != secretName || upDigest == "" {
		t.Errorf("environment: pull secrets %v, app's digest %q", env.Spec.ImagePullSecrets, upDigest)
	}
	if code, _, err := reg.get(ctx, "/v2/"+repo+"/manifests/"+upDigest, true); code != http.StatusOK {
		t.Errorf("up runs %s, which the registry does not have: %d %v", upDigest, code, err)
	}
	if _, stderr, code := p.run(3*time.Minute, "down"); code != 0 || !p.namespaceGone() {
		t.Errorf("down exited %d\n%s", code, stderr)
	}

	// 4. A pod of the image by digest, pulled with the secret's credentials (through the loopback
	// relay: the same registry, under the name the node's runtime pulls over HTTP), runs it.
	relay := reg.loopbackRelay()
	ns := cluster.Namespace(t, p.cs, "e2e-userreg-run")
	rekeyed, _ := json.Marshal(map[string]any{"auths": map[string]any{relay: auths.Auths[reg.host]}})
	if _, err := p.cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pull"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: rekeyed},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "run"},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			ImagePullSecrets:              []corev1.LocalObjectReference{{Name: "pull"}},
			Containers: []corev1.Container{{Name: "run", Image: relay + "/" + repo + "@" + upDigest,
				ImagePullPolicy: corev1.PullAlways, Command: []string{"cat", "/marker"}}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 2*time.Minute, time.Second, "the pod of the pushed image to finish", func(ctx context.Context) (bool, string, error) {
		pod, err := p.cs.CoreV1().Pods(ns).Get(ctx, "run", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		if pod.Status.Phase == corev1.PodFailed {
			return false, "", fmt.Errorf("the pod failed: %+v", pod.Status)
		}
		return pod.Status.Phase == corev1.PodSucceeded, fmt.Sprintf("%s %v", pod.Status.Phase, pod.Status.ContainerStatuses), nil
	})
	logs, err := p.cs.CoreV1().Pods(ns).GetLogs("run", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil || strings.TrimSpace(string(logs)) != nonce {
		t.Errorf("the pod printed %q (%v), want the built marker %q", logs, err, nonce)
	}
}

// TestBuildRegistryFull: a push to a registry whose storage is full (a 8 MiB tmpfs, an image
// layer of 16 MiB) fails with a message that says so and what to do; up exits 1 and applies
// nothing.
func TestBuildRegistryFull(t *testing.T) {
	t.Parallel()
	p := newUpProject(t, "e2e-regfull", "services:\n  app:\n    build: ./app\n")
	needBuilder(t, p)
	reg := startUserRegistry(t, p.cs, "8Mi")
	writeFiles(t, p.dir, map[string]string{"app/Dockerfile": "FROM ergomake.test/testapp:latest\nCOPY big.bin /big.bin\n"})
	big := make([]byte, 16<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "app", "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	p.setEnv("DOCKER_CONFIG=" + reg.dockerConfig(reg.host))
	_, stderr, code := p.run(buildTimeout, "up", "--registry", "http://"+reg.host+"/proj")
	if code != 1 {
		t.Fatalf("up exited %d, want 1\n%s", code, stderr)
	}
	for _, want := range []string{"the registry " + reg.host + "/proj is full", "Make room", "--registry", `"app"`} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if !p.namespaceGone() || len(p.envsOfProject()) > 0 {
		t.Errorf("a failed push left namespace %s or environment %v", p.ns, p.envsOfProject())
	}
}
