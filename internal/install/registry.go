package install

import (
	"context"
	"fmt"
	"strconv"

	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ergomake/ergomake/config"
	"github.com/ergomake/ergomake/internal/registryrelay"
)

// The in-cluster registry: where built images go (distribution's registry, built into an image
// by hack/cluster/registry), and the node relay that lets every node's container runtime pull from
// it as 127.0.0.1:RELAYPORT/NAME over plain HTTP.
const (
	// RegistryName names the registry's ConfigMap, PersistentVolumeClaim, Service and Deployment.
	RegistryName = "ergomake-registry"
	// RelayName names the node relay's DaemonSet.
	RelayName = "ergomake-registry-relay"
	// RegistryPort is the registry Service's (and container's) port.
	RegistryPort = 5000
	// DefaultRelayPort is the port the relay listens on, on each node's 127.0.0.1.
	DefaultRelayPort = 5100
	// RegistryImageRepository is where released registry images are published.
	RegistryImageRepository = "ghcr.io/ergomake/ergomake-registry"
)

// Storage is where the registry keeps its images.
type Storage string

const (
	// StorageAuto is a PersistentVolumeClaim when the cluster has a default StorageClass, else an
	// emptyDir (Install decides; Objects, which has no cluster to ask, takes StoragePVC).
	StorageAuto Storage = ""
	// StoragePVC is a PersistentVolumeClaim of the default StorageClass.
	StoragePVC Storage = "pvc"
	// StorageEmptyDir is an emptyDir: images are lost when the registry's pod goes.
	StorageEmptyDir Storage = "emptyDir"
)

// DefaultRegistryImage is the registry image released with this binary's version.
func DefaultRegistryImage() string {
	return RegistryImageRepository + ":" + imageTag()
}

// RelayAddress is the address pods name images by: 127.0.0.1:port (port 0: DefaultRelayPort).
func RelayAddress(port int) string {
	if port == 0 {
		port = DefaultRelayPort
	}
	return "127.0.0.1:" + strconv.Itoa(port)
}

// registryUpstream is the registry Service as the relay dials it.
func registryUpstream(namespace string) string {
	return fmt.Sprintf("%s.%s.svc:%d", RegistryName, namespace, RegistryPort)
}

// registryObjects are the registry's ConfigMap, PersistentVolumeClaim (unless opts says emptyDir),
// Service and Deployment, then the relay's DaemonSet, set up for opts (defaults filled in).
func registryObjects(opts Options) ([]*unstructured.Unstructured, error) {
	files := []string{"registry/configmap.yaml", "registry/pvc.yaml", "registry/service.yaml", "registry/deployment.yaml", "registry/relay-daemonset.yaml"}
	if opts.RegistryStorage == StorageEmptyDir {
		files = append(files[:1], files[2:]...)
	}
	out, err := decodeFiles(config.Registry, files...)
	if err != nil {
		return nil, err
	}
	for _, u := range out {
		switch {
		case u.GetKind() == "Deployment" && u.GetName() == RegistryName:
			err = setRegistryDeployment(u, opts)
		case u.GetKind() == "DaemonSet" && u.GetName() == RelayName:
			err = setRelayDaemonSet(u, opts)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return out, nil
}

func setRegistryDeployment(u *unstructured.Unstructured, opts Options) error {
	if err := setContainer(u, "registry", func(c map[string]any) { c["image"] = opts.RegistryImage }); err != nil {
		return err
	}
	if err := setRevision(u, opts.RegistryRevision); err != nil {
		return err
	}
	if opts.RegistryStorage != StorageEmptyDir {
		return nil
	}
	volumes, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "volumes")
	for i, v := range volumes {
		if m, ok := v.(map[string]any); ok && m["name"] == "storage" {
			volumes[i] = map[string]any{"name": "storage", "emptyDir": map[string]any{}}
		}
	}
	return unstructured.SetNestedSlice(u.Object, volumes, "spec", "template", "spec", "volumes")
}

func setRelayDaemonSet(u *unstructured.Unstructured, opts Options) error {
	port := opts.RelayPort
	if err := setRevision(u, opts.Revision); err != nil { // it runs the operator's image
		return err
	}
	return setContainer(u, "relay", func(c map[string]any) {
		c["image"] = opts.Image
		c["args"] = []any{
			registryrelay.Command,
			"--listen=" + RelayAddress(port),
			"--upstream=" + registryUpstream(opts.Namespace),
		}
		c["readinessProbe"] = map[string]any{
			"tcpSocket":     map[string]any{"host": "127.0.0.1", "port": int64(port)},
			"periodSeconds": int64(10),
		}
	})
}

// setContainer calls set on the pod template's container called name.
func setContainer(u *unstructured.Unstructured, name string, set func(map[string]any)) error {
	containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	found := false
	for _, c := range containers {
		if m, ok := c.(map[string]any); ok && m["name"] == name {
			set(m)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("no container %q", name)
	}
	return unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers")
}

// resolveStorage turns StorageAuto, for the registry's images and the builder's cache, into
// StoragePVC when the cluster has a default StorageClass and into StorageEmptyDir (with a warning on
// opts.Out) when it has none.
func resolveStorage(ctx context.Context, c client.Client, opts *Options) error {
	builder := opts.BuilderMode != BuilderNone && opts.BuilderStorage == StorageAuto
	if opts.RegistryStorage != StorageAuto && !builder {
		return nil
	}
	var classes storagev1.StorageClassList
	if err := c.List(ctx, &classes); err != nil {
		return fmt.Errorf("looking for a default StorageClass for the registry's and the builder's storage: %w", err)
	}
	st := StorageEmptyDir
	for _, sc := range classes.Items {
		if sc.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
			st = StoragePVC
		}
	}
	if opts.RegistryStorage == StorageAuto {
		opts.RegistryStorage = st
		if st == StorageEmptyDir {
			fmt.Fprintf(opts.Out, "warning: the cluster has no default StorageClass: the registry keeps its images in an emptyDir volume, lost when its pod is deleted or moved\n")
		}
	}
	if builder {
		opts.BuilderStorage = st
		if st == StorageEmptyDir {
			fmt.Fprintf(opts.Out, "warning: the cluster has no default StorageClass: the builder keeps its cache in an emptyDir volume, lost when its pod is deleted or moved (builds then start cold)\n")
		}
	}
	return nil
}
