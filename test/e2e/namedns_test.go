//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/internal/install"
	"github.com/ergomake/ergomake/internal/namedns"
	"github.com/ergomake/ergomake/internal/testutil/cluster"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// TestEnvironmentDNS: the operator installed in the cluster (make operator-install) handles an
// environment with a service named web_app, which no Service name and no /etc/hosts entry can
// carry. Its pods resolve through the operator's environment DNS (the ergomake-dns Service): a pod
// reaches web_app by that name (short, absolute bare, and in its namespace's cluster form, any
// case), and still reaches ordinary names (another service, kubernetes.default) forwarded to
// cluster DNS. nslookup asks DNS itself (not /etc/hosts), so the answers are the DNS server's.
func TestEnvironmentDNS(t *testing.T) {
	t.Parallel()
	cfg := cluster.Config(t)
	cs := cluster.Clientset(t, cfg)
	ctx := context.Background()

	dnsSvc, err := cs.CoreV1().Services(install.DefaultNamespace).Get(ctx, namedns.ServiceName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the installed operator's %s Service: %v (run make operator-install)", namedns.ServiceName, err)
	}
	dnsIP := dnsSvc.Spec.ClusterIP

	c := envClient(t, cfg)
	ns := cluster.Namespace(t, cs, "e2e-dns")
	web := testService("web_app")
	web.ServiceName = "web-app"
	client1 := testService("client")
	client1.Aliases = []string{"client_alias"}
	env := &v1alpha1.ErgomakeEnv{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: v1alpha1.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: "names", Namespace: ns}, // no instance label: the installed operator's
		Spec:       v1alpha1.EnvSpec{Project: "names", Services: []v1alpha1.ServiceSpec{web, client1}},
	}
	if err := c.Create(ctx, env); err != nil {
		t.Fatalf("creating the ErgomakeEnv: %v", err)
	}
	cluster.Eventually(t, 3*time.Minute, time.Second, "environment ready", func(ctx context.Context) (bool, string, error) {
		got := &v1alpha1.ErgomakeEnv{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(env), got); err != nil {
			return false, err.Error(), nil
		}
		return got.Status.Phase == v1alpha1.PhaseReady, describeStatus(got), nil
	})

	var clientPod, webPod *corev1.Pod
	cluster.Eventually(t, time.Minute, time.Second, "ready pods", func(ctx context.Context) (bool, string, error) {
		var err error
		if clientPod, err = readyPodOf(ctx, cs, ns, "names", "client"); err != nil {
			return false, err.Error(), nil
		}
		if webPod, err = readyPodOf(ctx, cs, ns, "names", "web_app"); err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
	for _, p := range []*corev1.Pod{clientPod, webPod} {
		spec := p.Spec
		if spec.DNSPolicy != corev1.DNSNone || spec.DNSConfig == nil || len(spec.DNSConfig.Nameservers) == 0 || spec.DNSConfig.Nameservers[0] != dnsIP {
			t.Fatalf("pod %s: dnsPolicy %s, dnsConfig %+v; want the nameserver %s", p.Name, spec.DNSPolicy, spec.DNSConfig, dnsIP)
		}
	}

	// The operator may also write the names into the pods' /etc/hosts; a pod of the namespace with
	// the same resolver settings and the kubelet's own /etc/hosts shows that DNS alone does it.
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "dns-probe", Namespace: ns, Labels: map[string]string{v1alpha1.LabelEnv: "dns-probe"}},
		Spec: corev1.PodSpec{
			DNSPolicy:                    clientPod.Spec.DNSPolicy,
			DNSConfig:                    clientPod.Spec.DNSConfig.DeepCopy(),
			AutomountServiceAccountToken: new(bool),
			Containers: []corev1.Container{{
				Name: "probe", Image: cluster.TestImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Env:            []corev1.EnvVar{{Name: "SERVICE", Value: "dns-probe"}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
			}},
		},
	}
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, probe, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	probePod := cluster.ReadyPod(t, cs, ns, map[string]string{v1alpha1.LabelEnv: "dns-probe"}, time.Minute)
	if hosts, _ := execIn(ctx, cfg, cs, ns, probePod.Name, "cat", "/etc/hosts"); strings.Contains(hosts, "web_app") {
		t.Fatalf("the probe pod's /etc/hosts has web_app:\n%s", hosts)
	}

	// By name over HTTP, as an application would.
	for _, tc := range []struct {
		from *corev1.Pod
		url  string
		want string
	}{
		{clientPod, "http://web_app:8080/", `"web_app"`},
		{clientPod, "http://web_app.:8080/", `"web_app"`}, // absolute: the bare name, answered for the asking pod's namespace
		{clientPod, "http://WEB_APP." + ns + ".svc.cluster.local:8080/", `"web_app"`},
		{webPod, "http://client:8080/", `"client"`}, // an ordinary Service name, through cluster DNS
		{webPod, "http://client_alias:8080/", `"client"`},
		{probePod, "http://web_app:8080/", `"web_app"`},
		{probePod, "http://web_app.:8080/", `"web_app"`},
		{probePod, "http://client_alias:8080/", `"client"`},
		{probePod, "http://client:8080/", `"client"`},
	} {
		cluster.Eventually(t, time.Minute, time.Second, fmt.Sprintf("%s fetching %s", tc.from.Name, tc.url), func(ctx context.Context) (bool, string, error) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			code, body, err := dnsFetch(ctx, cs, ns, tc.from.Name, tc.url)
			if err != nil {
				return false, err.Error(), nil
			}
			return code == 200 && strings.Contains(body, tc.want), fmt.Sprintf("%d %s", code, body), nil
		})
	}

	// DNS itself: nslookup in the pod asks its nameserver, never /etc/hosts.
	webIP := serviceIP(t, cs, ns, "web-app")
	clientIP := serviceIP(t, cs, ns, "client")
	for _, tc := range []struct{ name, want string }{
		{"web_app." + ns + ".svc.cluster.local", webIP},
		{"Web_App." + ns + ".svc.cluster.local", webIP},
		{"web_app.", webIP}, // absolute: answered for the asking pod's namespace
		{"client_alias." + ns + ".svc.cluster.local", clientIP},
		{"client." + ns + ".svc.cluster.local", clientIP},
		{"kubernetes.default.svc.cluster.local", "10.96.0.1"},
	} {
		out, err := execIn(ctx, cfg, cs, ns, clientPod.Name, "nslookup", tc.name)
		if err != nil || !strings.Contains(out, "Server:") || !strings.Contains(out, dnsIP) || !strings.Contains(out, "Address: "+tc.want) {
			t.Errorf("nslookup %s: %v\n%s", tc.name, err, out)
		}
	}
	// A name that exists nowhere is NXDOMAIN, as cluster DNS says.
	out, _ := execIn(ctx, cfg, cs, ns, clientPod.Name, "nslookup", "nothing-here."+ns+".svc.cluster.local")
	if !strings.Contains(out, "NXDOMAIN") {
		t.Errorf("nslookup of a missing name:\n%s", out)
	}
	hosts, _ := execIn(ctx, cfg, cs, ns, clientPod.Name, "cat", "/etc/hosts")
	t.Logf("client pod /etc/hosts:\n%s", hosts)

	// The server of this working tree, run here on loopback for the test's namespace: its cache
	// of the real cluster and the cluster DNS it finds (kube-dns) give the same answers.
	srv, err := namedns.New(namedns.Options{Config: cfg, Addr: "127.0.0.1:0", Namespaces: []string{ns}, Drain: -1})
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Start(srvCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	cluster.Eventually(t, 30*time.Second, 100*time.Millisecond, "in-process server ready", func(context.Context) (bool, string, error) {
		select {
		case err := <-done:
			return false, "", err
		default:
		}
		return srv.Ready(nil) == nil, "", nil
	})
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"web_app." + ns + ".svc.cluster.local.", dns.TypeA, webIP},
		{"web_app." + ns + ".svc.cluster.local.", dns.TypeAAAA, ""},
		{"client." + ns + ".svc.cluster.local.", dns.TypeA, clientIP},
		{"kubernetes.default.svc.cluster.local.", dns.TypeA, "10.96.0.1"},
	} {
		for _, network := range []string{"udp", "tcp"} {
			m := new(dns.Msg)
			m.SetQuestion(tc.name, tc.qtype)
			r, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, srv.Addr().String())
			if err != nil {
				t.Errorf("%s %s: %v", network, tc.name, err)
				continue
			}
			got := ""
			for _, rr := range r.Answer {
				if a, ok := rr.(*dns.A); ok {
					got = a.A.String()
				}
			}
			if r.Rcode != dns.RcodeSuccess || got != tc.want {
				t.Errorf("%s %s %s: %s", network, tc.name, dns.TypeToString[tc.qtype], r)
			}
		}
	}
}

func serviceIP(t *testing.T, cs kubernetes.Interface, ns, name string) string {
	t.Helper()
	s, err := cs.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Spec.ClusterIP
}

// dnsFetch asks a test-image pod to GET url (its /fetch endpoint) through the API server's pod proxy
// and returns the status code the pod got and the body (or the pod's error text).
func dnsFetch(ctx context.Context, cs kubernetes.Interface, ns, pod, url string) (int, string, error) {
	raw, err := cs.CoreV1().Pods(ns).ProxyGet("http", pod, "8080", "/fetch", map[string]string{"url": url}).DoRaw(ctx)
	var reply struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
		Error  string `json:"error"`
	}
	if jerr := json.Unmarshal(raw, &reply); jerr != nil {
		if err != nil {
			return 0, string(raw), err
		}
		return 0, string(raw), jerr
	}
	if reply.Error != "" {
		return 0, reply.Error, nil
	}
	return reply.Status, reply.Body, nil
}

// execIn runs a command in the pod's first container and returns its stdout and stderr.
func execIn(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, ns, pod string, command ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Command: command, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		return "", err
	}
	var stdout, stderr bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr})
	return stdout.String() + stderr.String(), err
}
