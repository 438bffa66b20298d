// Package testapp runs the project's test workload (test/testapp, the image cluster.TestImage) in
// tests: a Deployment of it, created and waited for, and the JSON it answers over HTTP.
package testapp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/ergomake/ergomake/internal/testutil/cluster"
)

// Deployment is a Deployment name in ns of the test image: one replica, pods labelled labels (nil:
// app=name) that end within 2s, their container (also name) run with SERVICE=name and env (each
// "KEY=value": PORTS, ECHO_PORTS, READY_AFTER ...), ready through readiness (nil: no probe).
func Deployment(ns, name string, labels map[string]string, readiness *corev1.Probe, env ...string) *appsv1.Deployment {
	if labels == nil {
		labels = map[string]string{"app": name}
	}
	vars := []corev1.EnvVar{{Name: "SERVICE", Value: name}}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars = append(vars, corev1.EnvVar{Name: k, Value: v})
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers: []corev1.Container{{
						Name:            name,
						Image:           cluster.TestImage,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Env:             vars,
						ReadinessProbe:  readiness,
					}},
				},
			},
		},
	}
}

// HTTPReady is a readiness probe that GETs /healthz on port every second.
func HTTPReady(port int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(port)}},
		PeriodSeconds: 1,
	}
}

// Deploy creates d and waits up to 90s until it is ready.
func Deploy(t testing.TB, cs kubernetes.Interface, d *appsv1.Deployment) {
	t.Helper()
	if _, err := cs.AppsV1().Deployments(d.Namespace).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating deployment %s: %v", d.Name, err)
	}
	cluster.WaitDeploymentReady(t, cs, d.Namespace, d.Name, 90*time.Second)
}

// Reply is what the test app answers on / (and on /fetch, with the status and body it fetched).
type Reply struct {
	Service  string `json:"service"`
	Hostname string `json:"hostname"`
	Port     int    `json:"port"`
	Status   int    `json:"status"`
	Body     string `json:"body"`
}

// Get does GET u on a new connection (through a forwarder: a new forwarded connection), bounded by
// ctx and by 30s, and decodes the reply; a status other than 200 is an error.
func Get(ctx context.Context, u string) (Reply, error) {
	var r Reply
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return r, err
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return r, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("GET %s: %v: %s", u, err, body)
	}
	return r, nil
}

// MustGet is Get, failing t on error.
func MustGet(t testing.TB, u string) Reply {
	t.Helper()
	r, err := Get(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
