//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
)

// regRelayAddress is where the node relay of the installed registry listens, read from its DaemonSet
// (the local cluster's single node is this host, so the test reaches it there too). The test is
// skipped when the registry is not installed (make cluster-up installs and seeds it).
func regRelayAddress(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ds, err := cs.AppsV1().DaemonSets(install.DefaultNamespace).Get(ctx, install.RelayName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		t.Skipf("the registry is not installed (make cluster-up): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ds.Spec.Template.Spec.Containers[0].Args {
		if addr, ok := strings.CutPrefix(a, "--listen="); ok {
			return addr
		}
	}
	t.Fatalf("no --listen in the relay's args %q", ds.Spec.Template.Spec.Containers[0].Args)
	return ""
}

// TestRegistryPullThroughRelay runs a pod of the seeded busybox image named by the relay's
// loopback address with imagePullPolicy Always: the node's container runtime pulls it over plain
// HTTP from 127.0.0.1, through the relay, from the in-cluster registry (the image it runs is the
// registry's). It pulls busybox rather than the seeded test image on purpose: the test image is
// also preloaded into containerd as ergomake.test/testapp:latest with the same config but another
// manifest digest, and once containerd's CRI plugin has pulled the registry's copy it stops finding
// the preloaded name (every later pod of ergomake.test/testapp:latest then tries to pull it).
func TestRegistryPullThroughRelay(t *testing.T) {
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	relay := regRelayAddress(t, cs)
	ns := cluster.Namespace(t, cs, "e2e-registry")
	ctx := context.Background()

	digest := regManifestDigest(t, relay, "library/busybox", "latest")
	grace := int64(1)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "busybox", Labels: map[string]string{"app": "busybox"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name:            "busybox",
				Image:           relay + "/library/busybox:latest",
				ImagePullPolicy: corev1.PullAlways,
				Command:         []string{"sh", "-c", "touch /tmp/ready; exec sleep 3600"},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/tmp/ready"}}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := cluster.ReadyPod(t, cs, ns, map[string]string{"app": "busybox"}, 90*time.Second)
	if id := p.Status.ContainerStatuses[0].ImageID; !strings.HasSuffix(id, "@"+digest) {
		t.Errorf("the pod runs image %s, want the registry's %s", id, digest)
	}
}

// TestRegistryPushThenRunByDigest pushes a fresh image (busybox and a random marker file) to the
// registry through the relay with the registry API, then runs a pod of it by digest: the marker it
// prints is the one just pushed.
func TestRegistryPushThenRunByDigest(t *testing.T) {
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	relay := regRelayAddress(t, cs)
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no static busybox to build the image from (apt-get install busybox-static): %v", err)
	}
	ns := cluster.Namespace(t, cs, "e2e-registry")
	ctx := context.Background()

	marker := regRandomHex(t, 16)
	// busybox in a layer of its own, the same every run (the registry keeps one copy), and the
	// marker in a small one: a new image each run, pushed by digest only
	repo := "e2e/fresh"
	base, baseDiffID := regGzipLayer(t, map[string][]byte{"bin/busybox": busybox}, map[string]string{"bin/sh": "busybox"})
	top, topDiffID := regGzipLayer(t, map[string][]byte{"marker": []byte(marker)}, nil)
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/bin"}, "Cmd": []string{"/bin/sh", "-c", "cat /marker"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{baseDiffID, topDiffID}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": regPushBlob(t, relay, repo, config), "size": len(config)},
		"layers": []any{
			map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": regPushBlob(t, relay, repo, base), "size": len(base)},
			map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": regPushBlob(t, relay, repo, top), "size": len(top)},
		},
	})
	digest := regPushManifest(t, relay, repo, manifest)
	t.Cleanup(func() { regDeleteManifest(t, relay, repo, digest) })

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "fresh"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "fresh", Image: relay + "/" + repo + "@" + digest}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 90*time.Second, 500*time.Millisecond, "the pod of the pushed image to succeed", func(ctx context.Context) (bool, string, error) {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "fresh", metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		if p.Status.Phase == corev1.PodFailed {
			return false, "", fmt.Errorf("the pod failed: %+v", p.Status.ContainerStatuses)
		}
		state := string(p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			if w := c.State.Waiting; w != nil {
				state += " " + w.Reason + ": " + w.Message
			}
		}
		return p.Status.Phase == corev1.PodSucceeded, state, nil
	})
	logs, err := cs.CoreV1().Pods(ns).GetLogs("fresh", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(logs)); got != marker {
		t.Errorf("the pod printed %q, want the pushed marker %q", got, marker)
	}
}

func regRandomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func regDigest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// regGzipLayer is a gzipped tar of files and symlinks (name -> target) and the digest of the tar.
func regGzipLayer(t *testing.T, files map[string][]byte, links map[string]string) ([]byte, string) {
	t.Helper()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	dirs := map[string]bool{}
	for name, data := range files {
		if dir, _, ok := strings.Cut(name, "/"); ok && !dirs[dir] {
			dirs[dir] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz.Bytes(), regDigest(raw.Bytes())
}

// regDo sends a request to the registry API through the relay and returns the response with
// its body read.
func regDo(t *testing.T, method, u string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// regPushBlob uploads data in one request (POST then PUT with the digest) and returns its digest.
func regPushBlob(t *testing.T, relay, repo string, data []byte) string {
	t.Helper()
	base := "http://" + relay
	resp, body := regDo(t, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting an upload to %s: %s %s", repo, resp.Status, body)
	}
	loc, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	loc, err = loc.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	digest := regDigest(data)
	q := loc.Query()
	q.Set("digest", digest)
	loc.RawQuery = q.Encode()
	resp, body = regDo(t, http.MethodPut, loc.String(), data, map[string]string{"Content-Type": "application/octet-stream"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("uploading a blob to %s: %s %s", repo, resp.Status, body)
	}
	return digest
}

func regPushManifest(t *testing.T, relay, repo string, manifest []byte) string {
	t.Helper()
	digest := regDigest(manifest)
	resp, body := regDo(t, http.MethodPut, "http://"+relay+"/v2/"+repo+"/manifests/"+digest, manifest,
		map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("pushing the manifest of %s: %s %s", repo, resp.Status, body)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != digest {
		t.Fatalf("the registry stored the manifest as %s, want %s", got, digest)
	}
	return digest
}

func regDeleteManifest(t *testing.T, relay, repo, digest string) {
	resp, body := regDo(t, http.MethodDelete, "http://"+relay+"/v2/"+repo+"/manifests/"+digest, nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("deleting %s@%s: %s %s", repo, digest, resp.Status, body)
	}
}

// regManifestDigest is the digest the registry has for repo:tag.
func regManifestDigest(t *testing.T, relay, repo, tag string) string {
	t.Helper()
	resp, body := regDo(t, http.MethodHead, "http://"+relay+"/v2/"+repo+"/manifests/"+tag, nil, map[string]string{
		"Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the registry has no %s:%s (make cluster-seed): %s %s", repo, tag, resp.Status, body)
	}
	return resp.Header.Get("Docker-Content-Digest")
}
