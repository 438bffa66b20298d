package operator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/ergomake/ergomake/internal/render"
	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// LabelInstance on an ErgomakeEnv hands it to the operator started with the same Instance. An
// operator with no Instance (the installed one) handles only environments without the label, so a
// development or test operator can run beside the installed one without the two fighting.
const LabelInstance = "ergomake.dev/operator"

// LeaderElectionID is the Lease the operator replicas elect a leader with.
const LeaderElectionID = "ergomake-operator.ergomake.dev"

var setGlobalLogger sync.Once

// Options configure the operator's manager.
type Options struct {
	// Config reaches the cluster.
	Config *rest.Config
	// MetricsAddr serves Prometheus metrics ("0" or "": off). It must be a loopback address
	// (127.0.0.1:8080, [::1]:8080, localhost:8080): the endpoint has no authentication of its
	// own, so it is reached only through `kubectl port-forward`, which the API server
	// authenticates and authorizes (pods/portforward in the operator's namespace).
	MetricsAddr string
	// HealthAddr serves /healthz and /readyz ("": off).
	HealthAddr string
	// LeaderElection makes replicas elect one leader (in LeaderElectionNamespace, default: the
	// namespace the operator runs in).
	LeaderElection          bool
	LeaderElectionNamespace string
	// Instance: see LabelInstance.
	Instance string
	// Namespaces restricts the operator to these namespaces (nil: all).
	Namespaces []string
	// Clock decides TTL expiry and status times (nil: the real clock).
	Clock clock.Clock
	// Log receives the operator's log (nil: text lines on stderr).
	Log *logr.Logger
	// MaxConcurrentReconciles bounds how many environments are reconciled at once (default 4).
	MaxConcurrentReconciles int
	// DNSAddr serves the environment DNS (internal/namedns) over UDP and TCP ("": off).
	DNSAddr string
	// DNSUpstream is cluster DNS, IP or IP:port, for the environment DNS ("": the kube-dns
	// Service).
	DNSUpstream string
	// ClusterDomain is the cluster's DNS domain (default cluster.local).
	ClusterDomain string
	// DNSNamespace is where the ergomake-dns Service is, whose ClusterIP pods of environments
	// with names cluster DNS cannot answer resolve through (default: POD_NAMESPACE, else
	// ergomake-system). Without that Service they keep cluster DNS.
	DNSNamespace string
	// SettingsNamespace is where the cluster settings (internal/clustersettings) are, whose
	// security ceiling every environment is checked against (default: POD_NAMESPACE, else
	// ergomake-system).
	SettingsNamespace string
}

// NewScheme knows every type the operator reads or writes.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// TextLogger writes the operator's log as plain key=value lines.
func TextLogger(w io.Writer) logr.Logger {
	return logr.FromSlogHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// NewManager builds the controller manager with the ErgomakeEnv reconciler registered.
func NewManager(opts Options) (manager.Manager, error) {
	if opts.Config == nil {
		return nil, fmt.Errorf("operator: no cluster configuration")
	}
	logger := TextLogger(os.Stderr)
	if opts.Log != nil {
		logger = *opts.Log
	}
	// controller-runtime's global logger (used by a few of its packages) is set once per process;
	// each manager logs through its own.
	setGlobalLogger.Do(func() { ctrl.SetLogger(logger) })
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}

	instance, err := instanceSelector(opts.Instance)
	if err != nil {
		return nil, err
	}
	hasEnv, err := labels.NewRequirement(v1alpha1.LabelEnv, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	children := labels.NewSelector().Add(*hasEnv)
	cacheOpts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&v1alpha1.ErgomakeEnv{}:         {Label: instance},
			&corev1.Pod{}:                   {Label: children},
			&corev1.Service{}:               {Label: children},
			&corev1.PersistentVolumeClaim{}: {Label: children},
			&appsv1.Deployment{}:            {Label: children},
			&batchv1.Job{}:                  {Label: children},
		},
	}
	if len(opts.Namespaces) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range opts.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	metricsAddr := opts.MetricsAddr
	if metricsAddr == "" {
		metricsAddr = "0"
	}
	if err := checkLoopback(metricsAddr); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(opts.Config, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        logger,
		Cache:                         cacheOpts,
		Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:        opts.HealthAddr,
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptr.To(10 * time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("operator: %w", err)
	}
	if opts.HealthAddr != "" {
		if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
			return nil, err
		}
	}
	kube, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, err
	}
	if err := setupDNS(mgr, opts, logger); err != nil {
		return nil, err
	}
	r := &Reconciler{
		Client:        mgr.GetClient(),
		APIReader:     mgr.GetAPIReader(),
		Kube:          kube,
		Scheme:        scheme,
		Clock:         clk,
		DNS:           &DNSServerLookup{Reader: mgr.GetAPIReader(), Key: dnsServiceKey(opts), Clock: clock.RealClock{}},
		ClusterDomain: opts.ClusterDomain,
		Ceiling:       &CeilingLookup{Reader: mgr.GetAPIReader(), Key: settingsKey(opts), Clock: clock.RealClock{}},
	}
	workers := opts.MaxConcurrentReconciles
	if workers <= 0 {
		workers = 4
	}
	if err := r.SetupWithManager(mgr, workers); err != nil {
		return nil, err
	}
	return mgr, nil
}

// Run runs the operator until ctx ends.
func Run(ctx context.Context, opts Options) error {
	mgr, err := NewManager(opts)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

func instanceSelector(instance string) (labels.Selector, error) {
	var req *labels.Requirement
	var err error
	if instance == "" {
		req, err = labels.NewRequirement(LabelInstance, selection.DoesNotExist, nil)
	} else {
		req, err = labels.NewRequirement(LabelInstance, selection.Equals, []string{instance})
	}
	if err != nil {
		return nil, fmt.Errorf("operator instance %q: %w", instance, err)
	}
	return labels.NewSelector().Add(*req), nil
}

// SetupWithManager registers the reconciler: ErgomakeEnvs, the objects they own, and their pods.
func (r *Reconciler) SetupWithManager(mgr manager.Manager, workers int) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("ergomakeenv").
		For(&v1alpha1.ErgomakeEnv{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Owns(&appsv1.Deployment{}).
		Owns(&batchv1.Job{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.PersistentVolumeClaim{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.podToEnv)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers, SkipNameValidation: ptr.To(true)}).
		Complete(r)
}

// podToEnv maps a pod to the environment named by its ergomake.dev/env label.
func (r *Reconciler) podToEnv(ctx context.Context, obj client.Object) []reconcile.Request {
	value := obj.GetLabels()[v1alpha1.LabelEnv]
	if value == "" {
		return nil
	}
	var envs v1alpha1.ErgomakeEnvList
	if err := r.Client.List(ctx, &envs, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, e := range envs.Items {
		if render.LabelValue(e.Name) == value {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&e)})
		}
	}
	return out
}

// checkLoopback refuses a metrics address other than "0" (off) that is not on loopback.
func checkLoopback(addr string) error {
	if addr == "0" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("operator: metrics address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("operator: metrics address %q is not on loopback: the metrics endpoint has no authentication of its own, so it binds to 127.0.0.1 (reach it with kubectl port-forward)", addr)
}
