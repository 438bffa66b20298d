// Package render turns an ErgomakeEnv into the Kubernetes objects that run it: a
// PersistentVolumeClaim per project volume, Services named after the compose services, and a
// Deployment (long-running) or Job (one-shot) per service. It is pure: no cluster, no I/O. The
// operator applies what it returns; `ergomake render` prints it.
package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/pkg/apis/ergomake/v1alpha1"
)

// Options tune rendering.
type Options struct {
	// ClusterIPs maps Service names to their ClusterIPs. The compose names and aliases that are not
	// valid DNS-1035 labels resolve through pod hostAliases to these IPs (see HostAliases); nil
	// means no IP is known yet, so no such hostAliases are rendered.
	ClusterIPs map[string]string
	// DNSServer is the ClusterIP of the operator's environment DNS (the ergomake-dns Service, see
	// internal/namedns). When it is set and the environment has names that neither cluster DNS
	// nor hostAliases can carry (UnresolvableNames, e.g. "web_app"), every pod of the environment
	// resolves through it (dnsPolicy None, see setEnvDNS): it answers those names and passes
	// every other query to cluster DNS. "" means there is none.
	DNSServer string
	// ClusterDomain is the cluster's DNS domain, for the pods' search list (default
	// DefaultClusterDomain).
	ClusterDomain string
}

// Objects are everything an environment consists of, Namespace, Secrets and ConfigMaps aside.
type Objects struct {
	// Claims are the PersistentVolumeClaims of the project's named volumes (external and emptyDir
	// volumes have none), in spec order.
	Claims []*corev1.PersistentVolumeClaim
	// Services are the compose services, in spec order.
	Services []Service
}

// Service is what one compose service becomes.
type Service struct {
	// Name is the compose service name.
	Name string
	// Services are the Kubernetes Services: the main one (named ServiceName) first, then one per
	// alias that is a valid DNS-1035 label, sorted by name.
	Services []*corev1.Service
	// Deployment runs a long-running service; nil for a one-shot service.
	Deployment *appsv1.Deployment
	// Job runs a one-shot service; nil for a long-running service.
	Job *batchv1.Job
	// SpecHash is the value of the ergomake.dev/spec-hash annotation on the workload and its pod
	// template: a hash of the rendered workload spec, excluding the hostAliases that come from
	// Options.ClusterIPs and the DNS settings that come from Options.DNSServer. Equal hashes mean
	// an existing workload needs no change beyond those hostAliases and DNS settings; a Job (whose
	// pod template is immutable) must be recreated when it differs.
	SpecHash string
}

// Workload returns the service's Deployment or Job (nil when it has neither).
func (s *Service) Workload() client.Object {
	switch {
	case s.Deployment != nil:
		return s.Deployment
	case s.Job != nil:
		return s.Job
	}
	return nil
}

// ServiceByName returns the rendered service with the given compose name, or nil.
func (o *Objects) ServiceByName(name string) *Service {
	for i := range o.Services {
		if o.Services[i].Name == name {
			return &o.Services[i]
		}
	}
	return nil
}

// List returns every object in a stable order: claims, then Services (each compose service's main
// Service followed by its alias Services), then workloads, each in spec order.
func (o *Objects) List() []client.Object {
	var out []client.Object
	for _, c := range o.Claims {
		out = append(out, c)
	}
	for i := range o.Services {
		for _, s := range o.Services[i].Services {
			out = append(out, s)
		}
	}
	for i := range o.Services {
		if w := o.Services[i].Workload(); w != nil {
			out = append(out, w)
		}
	}
	return out
}

// Error is a spec the renderer cannot build. The operator reports it as Degraded.
type Error struct {
	// Service is the compose service name; empty for environment-wide problems.
	Service string
	// Field is the spec field, e.g. "dependsOn" or "volumes[2].source".
	Field string
	// Message says what is wrong.
	Message string
}

func (e *Error) Error() string {
	switch {
	case e.Service != "" && e.Field != "":
		return fmt.Sprintf("service %q: %s: %s", e.Service, e.Field, e.Message)
	case e.Service != "":
		return fmt.Sprintf("service %q: %s", e.Service, e.Message)
	case e.Field != "":
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// errs collects rendering errors in the order they are found.
type errs []error

func (e *errs) add(service, field, format string, args ...any) {
	*e = append(*e, &Error{Service: service, Field: field, Message: fmt.Sprintf(format, args...)})
}

// defaultClaimSize is the size of a claim whose volume gives none.
const defaultClaimSize = "1Gi"

// Render builds the objects of env. It returns an error (every problem found, joined; each an
// *Error) when the spec cannot be built: an unknown dependency, a name or port clash, a mount of an
// undeclared volume, an invalid value.
func Render(env *v1alpha1.ErgomakeEnv, opts Options) (*Objects, error) {
	if env == nil {
		return nil, errors.New("render: no environment")
	}
	var e errs
	validateOptions(opts, &e)
	validateEnv(env, &e)
	if len(e) > 0 {
		return nil, errors.Join(e...)
	}

	volumes := map[string]*v1alpha1.VolumeSpec{}
	for i := range env.Spec.Volumes {
		volumes[env.Spec.Volumes[i].Name] = &env.Spec.Volumes[i]
	}
	out := &Objects{}
	for i := range env.Spec.Volumes {
		if c := renderClaim(env, &env.Spec.Volumes[i]); c != nil {
			out.Claims = append(out.Claims, c)
		}
	}
	ipAliases := HostAliases(env, opts.ClusterIPs)
	envDNS := usesEnvDNS(env, opts)
	for i := range env.Spec.Services {
		svc := &env.Spec.Services[i]
		r := Service{Name: svc.Name, Services: renderServices(env, svc, &e)}
		pod := renderPod(env, svc, volumes, &e)
		if pod == nil {
			continue
		}
		renderWorkload(env, svc, pod, &r, &e)
		if r.Deployment == nil && r.Job == nil {
			continue
		}
		// The hash covers the workload as rendered from the spec (extra_hosts and dns included);
		// hostAliases from ClusterIPs and the environment DNS are added afterwards, so that an IP
		// becoming known does not look like a spec change.
		r.SpecHash = hashOf(workloadSpec(&r))
		tmpl := podTemplate(&r)
		tmpl.Spec.HostAliases = addHostAliases(tmpl.Spec.HostAliases, ipAliases)
		if envDNS {
			setEnvDNS(&tmpl.Spec, env.Namespace, opts)
		}
		setAnnotation(&tmpl.ObjectMeta, v1alpha1.AnnotationSpecHash, r.SpecHash)
		setAnnotation(workloadMeta(&r), v1alpha1.AnnotationSpecHash, r.SpecHash)
		out.Services = append(out.Services, r)
	}
	if len(e) > 0 {
		return nil, errors.Join(e...)
	}
	return out, nil
}

func workloadSpec(r *Service) any {
	if r.Deployment != nil {
		return &r.Deployment.Spec
	}
	return &r.Job.Spec
}

func podTemplate(r *Service) *corev1.PodTemplateSpec {
	if r.Deployment != nil {
		return &r.Deployment.Spec.Template
	}
	return &r.Job.Spec.Template
}

func workloadMeta(r *Service) *metav1.ObjectMeta {
	if r.Deployment != nil {
		return &r.Deployment.ObjectMeta
	}
	return &r.Job.ObjectMeta
}

func setAnnotation(m *metav1.ObjectMeta, k, v string) {
	if m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	m.Annotations[k] = v
}

// hashOf hashes the JSON form of v (encoding/json sorts map keys, so it is stable).
func hashOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Kubernetes API types always marshal; keep going with a hash of the error.
		b = []byte(err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

func objectMeta(env *v1alpha1.ErgomakeEnv, name, service string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: env.Namespace, Labels: objectLabels(env, service)}
}

func renderClaim(env *v1alpha1.ErgomakeEnv, v *v1alpha1.VolumeSpec) *corev1.PersistentVolumeClaim {
	if v.External || v.EmptyDir {
		return nil
	}
	size := resource.MustParse(defaultClaimSize)
	if v.Size != nil {
		size = v.Size.DeepCopy()
	}
	labels := EnvLabels(env)
	labels[LabelVolume] = LabelValue(v.Name)
	c := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Name: v.ClaimName, Namespace: env.Namespace, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: size},
			},
			StorageClassName: copyPtr(v.StorageClassName),
		},
	}
	return c
}

// servicePorts are the ports peers dial: ports targets, then expose, deduplicated by port and
// protocol (the first wins); port = targetPort = container port.
func servicePorts(svc *v1alpha1.ServiceSpec) []v1alpha1.PortSpec {
	type key struct {
		port  int32
		proto string
	}
	seen := map[key]bool{}
	var out []v1alpha1.PortSpec
	for _, p := range append(append([]v1alpha1.PortSpec(nil), svc.Ports...), svc.Expose...) {
		p.Protocol = protocol(p.Protocol)
		k := key{p.Target, p.Protocol}
		if seen[k] {
			continue
		}
		seen[k] = true
		if p.Name == "" {
			p.Name = defaultPortName(p)
		}
		out = append(out, p)
	}
	return out
}

func protocol(p string) string {
	if p == "" {
		return string(corev1.ProtocolTCP)
	}
	return p
}

func defaultPortName(p v1alpha1.PortSpec) string {
	return fmt.Sprintf("%s-%d", strings.ToLower(p.Protocol), p.Target)
}

func renderServices(env *v1alpha1.ErgomakeEnv, svc *v1alpha1.ServiceSpec, e *errs) []*corev1.Service {
	var ports []corev1.ServicePort
	for _, p := range servicePorts(svc) {
		sp := corev1.ServicePort{
			Name:       p.Name,
			Protocol:   corev1.Protocol(p.Protocol),
			Port:       p.Target,
			TargetPort: intOrPort(p.Target),
		}
		if p.AppProtocol != "" {
			sp.AppProtocol = ptr.To(p.AppProtocol)
		}
		ports = append(ports, sp)
	}
	mk := func(name string) *corev1.Service {
		s := &corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: objectMeta(env, name, svc.Name),
			Spec: corev1.ServiceSpec{
				Type:     corev1.ServiceTypeClusterIP,
				Selector: SelectorLabels(env, svc.Name),
				Ports:    ports,
			},
		}
		if len(ports) == 0 {
			// No known port: a headless Service, so the name resolves to the pod IP and any port
			// works, as on a compose network.
			s.Spec.ClusterIP = corev1.ClusterIPNone
			s.Spec.PublishNotReadyAddresses = false
		}
		return s
	}
	out := []*corev1.Service{mk(svc.ServiceName)}
	for _, a := range aliasServiceNames(svc) {
		out = append(out, mk(a))
	}
	return out
}

// The rendered objects share no memory with the spec: callers hand them to clients that decode
// answers into them.
func copyQuantity(q *resource.Quantity) *resource.Quantity {
	if q == nil {
		return nil
	}
	c := q.DeepCopy()
	return &c
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func intOrPort(p int32) intstr.IntOrString { return intstr.FromInt32(p) }
