package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels and annotations every ergomake object carries or reads.
const (
	// LabelEnv names the ErgomakeEnv an object belongs to.
	LabelEnv = "ergomake.dev/env"
	// LabelService names the compose service (its original, unsanitized name) an object belongs to.
	LabelService = "ergomake.dev/service"
	// LabelManagedBy marks namespaces and objects ergomake created.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "ergomake"
	// LabelPartOf carries the compose project name.
	LabelPartOf = "app.kubernetes.io/part-of"
	// AnnotationHeartbeat is renewed (RFC 3339) by the CLI while it is attached to the environment.
	AnnotationHeartbeat = "ergomake.dev/heartbeat"
	// AnnotationOwner records who brought the environment up (user@host), for `ergomake ls`.
	AnnotationOwner = "ergomake.dev/owner"
	// AnnotationCreatedNamespace is set on an environment whose namespace ergomake created.
	AnnotationCreatedNamespace = "ergomake.dev/created-namespace"
	// AnnotationSpecHash holds the hash of the service spec a workload was rendered from.
	AnnotationSpecHash = "ergomake.dev/spec-hash"
	// AnnotationEnvSecretVersion on a pod template is the service's EnvSecretVersion.
	AnnotationEnvSecretVersion = "ergomake.dev/env-secret-version"
)

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=env;envs,categories=ergomake
// +kubebuilder:printcolumn:name="Project",type=string,JSONPath=`.spec.project`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Services",type=string,JSONPath=`.status.summary`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ErgomakeEnv is one compose project running on the cluster: the services, their images, ports,
// dependencies and volumes, as the CLI translated them from the compose files.
type ErgomakeEnv struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EnvSpec   `json:"spec,omitempty"`
	Status EnvStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ErgomakeEnvList is a list of ErgomakeEnv.
type ErgomakeEnvList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ErgomakeEnv `json:"items"`
}

// EnvSpec is the whole environment, translated from a compose project.
type EnvSpec struct {
	// Project is the compose project name.
	// +kubebuilder:validation:MinLength=1
	Project string `json:"project"`

	// TTL is how long the environment lives without a heartbeat (a change of annotation
	// ergomake.dev/heartbeat, timed by the operator's own clock from when it saw it, see
	// status.heartbeat) before the operator deletes it. Zero or unset: never.
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// Services are the compose services, in a stable order (by name).
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	Services []ServiceSpec `json:"services"`

	// Volumes are the project's named volumes.
	// +listType=map
	// +listMapKey=name
	// +optional
	Volumes []VolumeSpec `json:"volumes,omitempty"`

	// ImagePullSecrets are Secrets of type kubernetes.io/dockerconfigjson in the environment's
	// namespace that every pod uses to pull its image (the user's registry, ergomake up
	// --registry). The CLI creates them.
	// +optional
	ImagePullSecrets []string `json:"imagePullSecrets,omitempty"`
}

// Lifecycle says whether a service runs until stopped or runs once to completion.
// +kubebuilder:validation:Enum=LongRunning;OneShot
type Lifecycle string

const (
	// LongRunning services become Deployments.
	LongRunning Lifecycle = "LongRunning"
	// OneShot services (migrations, seeds: anything depended on with service_completed_successfully)
	// become Jobs.
	OneShot Lifecycle = "OneShot"
)

// DependencyCondition is the condition a dependency must meet, as compose names it.
// +kubebuilder:validation:Enum=service_started;service_healthy;service_completed_successfully
type DependencyCondition string

const (
	// ServiceStarted waits until the dependency's container has started.
	ServiceStarted DependencyCondition = "service_started"
	// ServiceHealthy waits until the dependency is ready (its healthcheck passes).
	ServiceHealthy DependencyCondition = "service_healthy"
	// ServiceCompletedSuccessfully waits until the dependency's Job has succeeded.
	ServiceCompletedSuccessfully DependencyCondition = "service_completed_successfully"
)

// ServiceSpec is one compose service.
//
// Escaping: Entrypoint, Command and Environment values are literal, exactly what the process must
// see (compose interpolation, including `$$` → `$`, already happened in the CLI). Kubernetes
// expands `$(VAR)` in a container's command, args and env values, so internal/render escapes every
// `$` as `$$` when it builds the container; nothing else may escape them (internal/translate does
// not). Healthcheck.Exec is not expanded by Kubernetes and is used as is.
type ServiceSpec struct {
	// Name is the compose service name, exactly as written in the compose file.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// ServiceName is the Kubernetes Service name: Name when it is a valid DNS-1035 label, else a
	// sanitized form (the original name then resolves through hostAliases).
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	ServiceName string `json:"serviceName"`
	// Image is the container image. For a built service (Build set) it is the built image by
	// digest (registry/repository@sha256:...), or Build.Image while the digest is unknown
	// (ergomake render).
	// +kubebuilder:validation:MinLength=1
	Image string `json:"image"`
	// Build records the image ergomake built for this service from its compose build: section;
	// nil when the image is pulled as named.
	// +optional
	Build *BuildSpec `json:"build,omitempty"`
	// ImagePullPolicy: Always, IfNotPresent or Never (compose's pull_policy; unset = IfNotPresent).
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	// +optional
	ImagePullPolicy string `json:"imagePullPolicy,omitempty"`
	// Lifecycle: LongRunning (a Deployment) or OneShot (a Job).
	// +kubebuilder:default=LongRunning
	// +optional
	Lifecycle Lifecycle `json:"lifecycle,omitempty"`
	// Entrypoint overrides the image's ENTRYPOINT (compose entrypoint); nil keeps it. Literal
	// values (render escapes $).
	// +optional
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Command overrides the image's CMD (compose command); nil keeps it. Literal values (render
	// escapes $).
	// +optional
	Command []string `json:"command,omitempty"`
	// ResetCommand is true when an entrypoint is set without a command, so the image's CMD is
	// dropped as Docker drops it.
	// +optional
	ResetCommand bool `json:"resetCommand,omitempty"`
	// Environment are the container's variables, already interpolated, sorted by name; values are
	// literal (render escapes $).
	// +optional
	Environment []EnvVar `json:"environment,omitempty"`
	// WorkingDir is the container's working directory.
	// +optional
	WorkingDir string `json:"workingDir,omitempty"`
	// User runs the container as this numeric uid and gid.
	// +optional
	User *UserSpec `json:"user,omitempty"`
	// Hostname is the pod's hostname (first label of compose hostname).
	// +optional
	Hostname string `json:"hostname,omitempty"`
	// Subdomain is the rest of an FQDN hostname.
	// +optional
	Subdomain string `json:"subdomain,omitempty"`
	// Ports are the container ports of compose `ports`: Service ports, and forwarded to localhost
	// when published.
	// +optional
	Ports []PortSpec `json:"ports,omitempty"`
	// Expose are container ports from compose `expose`: Service ports, never forwarded.
	// +optional
	Expose []PortSpec `json:"expose,omitempty"`
	// Healthcheck becomes a readiness probe (never a liveness probe).
	// +optional
	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`
	// DependsOn are the services that must meet a condition before this one's workload is created.
	// +listType=map
	// +listMapKey=service
	// +optional
	DependsOn []Dependency `json:"dependsOn,omitempty"`
	// Restart is compose's restart policy: no, always, on-failure, unless-stopped.
	// +optional
	Restart string `json:"restart,omitempty"`
	// MaxRetries is the Job backoff limit (on-failure:N, deploy.restart_policy.max_attempts).
	// +optional
	MaxRetries *int32 `json:"maxRetries,omitempty"`
	// Replicas is the number of pods (deploy.replicas, scale); default 1.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// Resources are limits and requests (deploy.resources, cpus, mem_limit, mem_reservation).
	// +optional
	Resources *Resources `json:"resources,omitempty"`
	// Volumes are the service's mounts: named volumes, files shipped as ConfigMaps or Secrets, tmpfs.
	// +optional
	Volumes []VolumeMount `json:"volumes,omitempty"`
	// Secrets are compose secrets, mounted from Secret objects the CLI creates.
	// +optional
	Secrets []FileMount `json:"secrets,omitempty"`
	// Configs are compose configs, mounted from ConfigMap objects the CLI creates.
	// +optional
	Configs []FileMount `json:"configs,omitempty"`
	// Aliases are further DNS names of this service (network aliases, links aliases,
	// container_name). Valid DNS-1035 labels get a Service each; others a hostAliases entry.
	// +optional
	Aliases []string `json:"aliases,omitempty"`
	// ExtraHosts become hostAliases (compose extra_hosts).
	// +optional
	ExtraHosts []HostEntry `json:"extraHosts,omitempty"`
	// DNS is extra resolver configuration (compose dns, dns_search, dns_opt).
	// +optional
	DNS *DNSSpec `json:"dns,omitempty"`
	// Security is the container's security context.
	// +optional
	Security *SecuritySpec `json:"security,omitempty"`
	// StopGracePeriod is compose's stop_grace_period (default 10s).
	// +optional
	StopGracePeriod *metav1.Duration `json:"stopGracePeriod,omitempty"`
	// ShmSize sizes a memory emptyDir mounted at /dev/shm.
	// +optional
	ShmSize *resource.Quantity `json:"shmSize,omitempty"`
	// Tty allocates a TTY; StdinOpen keeps stdin open.
	// +optional
	Tty bool `json:"tty,omitempty"`
	// +optional
	StdinOpen bool `json:"stdinOpen,omitempty"`
	// HostNetwork runs the pod in the node's network namespace (network_mode: host).
	// +optional
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// Platform selects nodes by os/arch (compose platform, e.g. linux/amd64).
	// +optional
	Platform string `json:"platform,omitempty"`
	// Labels are compose labels that are valid Kubernetes labels (pod labels).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations are pod annotations (compose annotations, and labels that are not valid labels).
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// Secret references (ARCHITECTURE.md decision 15): values of compose environment and
	// env_file never appear in the spec.

	// EnvSecret is the Secret, in the environment's namespace, holding the values of the
	// Environment entries that have a SecretKey. The CLI creates it (named env-<service>), owned
	// by the environment so the garbage collector removes it with it.
	// +optional
	EnvSecret string `json:"envSecret,omitempty"`
	// EnvSecretVersion changes whenever the values in EnvSecret change (the CLI sets it to an
	// opaque token that reveals nothing of them): it is a pod template annotation, so that the
	// service's pods restart with the new values, as compose recreates a container whose
	// environment changed.
	// +optional
	EnvSecretVersion string `json:"envSecretVersion,omitempty"`
}

// BuildSpec is what ergomake built for a service (compose build:).
type BuildSpec struct {
	// Key is the content key of the build: a hash of the context after .dockerignore, the
	// Dockerfile, the args, the target and the platforms. An unchanged key reuses the image.
	// +optional
	Key string `json:"key,omitempty"`
	// Image is the built image's name as the nodes pull it (registry/repository:tag).
	// +kubebuilder:validation:MinLength=1
	Image string `json:"image"`
	// Digest is the digest of the pushed image (sha256:...); empty until it is built.
	// +optional
	Digest string `json:"digest,omitempty"`
}

// EnvVar is one environment variable: its literal value, or (SecretKey set) a key of the
// service's EnvSecret holding it. The CLI always writes SecretKey; Value is for environments
// written by hand.
type EnvVar struct {
	Name string `json:"name"`
	// +optional
	Value string `json:"value,omitempty"`
	// SecretKey is the key of the service's EnvSecret holding the value; Value is then empty.
	// +optional
	SecretKey string `json:"secretKey,omitempty"`
}

// UserSpec is a numeric user and group.
type UserSpec struct {
	UID int64 `json:"uid"`
	// +optional
	GID *int64 `json:"gid,omitempty"`
}

// PortSpec is one container port.
type PortSpec struct {
	// Name is the Service port name (DNS-1035 label, unique within the service).
	Name string `json:"name"`
	// Target is the container port peers dial.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Target int32 `json:"target"`
	// Protocol: TCP, UDP or SCTP.
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	// +kubebuilder:default=TCP
	// +optional
	Protocol string `json:"protocol,omitempty"`
	// Published is the local port the CLI forwards to: a number, a range "8000-8010", or empty
	// for "any free port". Only meaningful on ports (not expose) with Publish set.
	// +optional
	Published string `json:"published,omitempty"`
	// Publish is true when compose publishes this port on the host.
	// +optional
	Publish bool `json:"publish,omitempty"`
	// HostIP is the local address to bind; empty means 127.0.0.1 and ::1.
	// +optional
	HostIP string `json:"hostIP,omitempty"`
	// AppProtocol is compose's app_protocol.
	// +optional
	AppProtocol string `json:"appProtocol,omitempty"`
}

// Healthcheck is a compose healthcheck in exec form.
type Healthcheck struct {
	// Exec is the command's argv; CMD-SHELL and string tests are ["/bin/sh", "-c", cmd].
	// +kubebuilder:validation:MinItems=1
	Exec []string `json:"exec"`
	// Interval between checks (compose default 30s).
	Interval metav1.Duration `json:"interval"`
	// Timeout of one check (compose default 30s).
	Timeout metav1.Duration `json:"timeout"`
	// Retries: consecutive failures before unhealthy (compose default 3).
	Retries int32 `json:"retries"`
	// StartPeriod: failures during it do not count (becomes a startup probe).
	// +optional
	StartPeriod *metav1.Duration `json:"startPeriod,omitempty"`
	// StartInterval: interval during the start period (compose default 5s).
	// +optional
	StartInterval *metav1.Duration `json:"startInterval,omitempty"`
}

// Dependency is one depends_on entry.
type Dependency struct {
	// Service is the compose name of the dependency.
	Service string `json:"service"`
	// Condition to wait for.
	// +kubebuilder:default=service_started
	Condition DependencyCondition `json:"condition"`
	// Required: when false, a dependency absent from the environment is skipped.
	// +kubebuilder:default=true
	Required bool `json:"required"`
}

// Resources are compute limits and requests.
type Resources struct {
	// +optional
	Limits map[string]resource.Quantity `json:"limits,omitempty"`
	// +optional
	Requests map[string]resource.Quantity `json:"requests,omitempty"`
}

// VolumeMountType says where a mount's content comes from.
// +kubebuilder:validation:Enum=volume;configMap;secret;tmpfs;emptyDir;hostPath
type VolumeMountType string

const (
	// MountVolume mounts a project named volume (a PVC).
	MountVolume VolumeMountType = "volume"
	// MountConfigMap mounts a ConfigMap the CLI created (a bind-mounted file or folder).
	MountConfigMap VolumeMountType = "configMap"
	// MountSecret mounts a Secret the CLI created: a bind-mounted file or folder holding files
	// that look private (.env*, keys, mode 0600), which never go into a ConfigMap.
	MountSecret VolumeMountType = "secret"
	// MountTmpfs mounts a memory-backed emptyDir.
	MountTmpfs VolumeMountType = "tmpfs"
	// MountEmptyDir mounts a fresh emptyDir (anonymous volumes).
	MountEmptyDir VolumeMountType = "emptyDir"
	// MountHostPath mounts a path of the node. The CLI never writes it (a host path of the user's
	// machine means nothing on a node); an environment written by hand may, within the ceiling.
	MountHostPath VolumeMountType = "hostPath"
)

// VolumeMount is one mount of a service.
type VolumeMount struct {
	Type VolumeMountType `json:"type"`
	// Source: the volume name (volume), the ConfigMap name (configMap), the Secret name (secret),
	// the node path (hostPath).
	// +optional
	Source string `json:"source,omitempty"`
	// Target is the path in the container.
	Target string `json:"target"`
	// SubPath mounts one entry of the source (a single bind-mounted file, volume subpath).
	// +optional
	SubPath string `json:"subPath,omitempty"`
	// +optional
	ReadOnly bool `json:"readOnly,omitempty"`
	// SizeLimit for tmpfs and emptyDir.
	// +optional
	SizeLimit *resource.Quantity `json:"sizeLimit,omitempty"`
	// Items maps ConfigMap or Secret keys to relative paths (bind-mounted folders with subfolders).
	// +optional
	Items []KeyPath `json:"items,omitempty"`
}

// KeyPath maps a key of a ConfigMap or Secret to a relative path.
type KeyPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
	// +optional
	Mode *int32 `json:"mode,omitempty"`
}

// FileMount mounts one key of a Secret or ConfigMap as a file.
type FileMount struct {
	// Name is the compose secret or config name.
	Name string `json:"name"`
	// Object is the Secret or ConfigMap name in the environment's namespace.
	Object string `json:"object"`
	// Key within the object.
	Key string `json:"key"`
	// Target is the absolute path of the file in the container.
	Target string `json:"target"`
	// Mode is the file mode.
	// +optional
	Mode *int32 `json:"mode,omitempty"`
}

// VolumeSpec is a project named volume.
type VolumeSpec struct {
	// Name is the compose volume name.
	Name string `json:"name"`
	// ClaimName is the PVC name.
	ClaimName string `json:"claimName"`
	// External: the PVC exists already and is not created or deleted by ergomake.
	// +optional
	External bool `json:"external,omitempty"`
	// Size of the claim (default 1Gi).
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`
	// StorageClassName of the claim; empty means the cluster default.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`
	// EmptyDir: no storage is available; the volume is an emptyDir per pod (not shared).
	// +optional
	EmptyDir bool `json:"emptyDir,omitempty"`
}

// HostEntry is one /etc/hosts line.
type HostEntry struct {
	Hostname string `json:"hostname"`
	IP       string `json:"ip"`
}

// DNSSpec is extra resolver configuration.
type DNSSpec struct {
	// +optional
	Nameservers []string `json:"nameservers,omitempty"`
	// +optional
	Searches []string `json:"searches,omitempty"`
	// +optional
	Options []string `json:"options,omitempty"`
}

// SecuritySpec is the container's security settings.
type SecuritySpec struct {
	// +optional
	Privileged bool `json:"privileged,omitempty"`
	// +optional
	ReadOnlyRootFilesystem bool `json:"readOnlyRootFilesystem,omitempty"`
	// +optional
	CapAdd []string `json:"capAdd,omitempty"`
	// +optional
	CapDrop []string `json:"capDrop,omitempty"`
	// +optional
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
	// +optional
	SupplementalGroups []int64 `json:"supplementalGroups,omitempty"`
	// +optional
	Sysctls map[string]string `json:"sysctls,omitempty"`
}

// Phase summarises the environment.
type Phase string

const (
	// PhasePending: nothing observed yet.
	PhasePending Phase = "Pending"
	// PhaseProgressing: services are starting.
	PhaseProgressing Phase = "Progressing"
	// PhaseReady: every long-running service ready, every one-shot service completed.
	PhaseReady Phase = "Ready"
	// PhaseDegraded: the environment cannot become ready without a change.
	PhaseDegraded Phase = "Degraded"
)

// Condition types of an ErgomakeEnv.
const (
	ConditionReady       = "Ready"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"
)

// ServiceState is where one service stands.
type ServiceState string

const (
	StateWaiting   ServiceState = "waiting"   // waiting for dependencies
	StatePulling   ServiceState = "pulling"   // pulling its image
	StateStarting  ServiceState = "starting"  // created, containers not yet running
	StateRunning   ServiceState = "running"   // running, not (yet) ready, or without healthcheck
	StateHealthy   ServiceState = "healthy"   // every replica ready
	StateCompleted ServiceState = "completed" // one-shot service succeeded
	StateFailed    ServiceState = "failed"    // cannot become ready without a change
)

// EnvStatus is what the operator observed.
type EnvStatus struct {
	// ObservedGeneration is the spec generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase summarises the conditions.
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// Summary is "ready/total" services, for kubectl's columns.
	// +optional
	Summary string `json:"summary,omitempty"`
	// Message is the most important thing a user should know now.
	// +optional
	Message string `json:"message,omitempty"`
	// Conditions: Ready, Progressing, Degraded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Services is one entry per service, in spec order.
	// +listType=map
	// +listMapKey=name
	// +optional
	Services []ServiceStatus `json:"services,omitempty"`
	// Heartbeat is the operator's view of the heartbeat (see HeartbeatStatus).
	// +optional
	Heartbeat *HeartbeatStatus `json:"heartbeat,omitempty"`
}

// ServiceStatus is the observed state of one service.
type ServiceStatus struct {
	// Name is the compose service name.
	Name string `json:"name"`
	// State is where the service stands.
	State ServiceState `json:"state"`
	// Ready replicas (or 1 when a one-shot service completed) out of Desired.
	Ready int32 `json:"ready"`
	// +optional
	Desired int32 `json:"desired"`
	// Reason is a CamelCase machine-readable reason (ImagePullBackOff, CrashLoopBackOff,
	// Unschedulable, ProbeFailing, JobFailed, WaitingForDependencies, ...).
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message is a human explanation the user can act on, on one line.
	// +optional
	Message string `json:"message,omitempty"`
	// LogTail is the last lines of the log of the container that explains a failure (a crash
	// loop, a failed one-shot service), oldest first; empty when there is none or it cannot be
	// read.
	// +optional
	LogTail []string `json:"logTail,omitempty"`
	// WaitingFor lists the dependencies not yet meeting their condition.
	// +optional
	WaitingFor []string `json:"waitingFor,omitempty"`
	// CreatedAt is when the operator created the service's workload.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`
	// ReadyAt is when the service became ready (healthy, running every replica, or completed)
	// and has stayed ready since; unset while it is not ready.
	// +optional
	ReadyAt *metav1.Time `json:"readyAt,omitempty"`
}
