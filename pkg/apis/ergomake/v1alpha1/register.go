package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of every ergomake resource.
const GroupName = "ergomake.dev"

// Version is this package's API version.
const Version = "v1alpha1"

var (
	// GroupVersion is the group and version of the types in this package.
	GroupVersion = schema.GroupVersion{Group: GroupName, Version: Version}
	// SchemeBuilder registers the types in this package with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the types in this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Kind is the kind of the ErgomakeEnv resource.
const Kind = "ErgomakeEnv"

// Resource is the plural resource name of ErgomakeEnv.
const Resource = "ergomakeenvs"

// GroupVersionResource of ErgomakeEnv, for dynamic clients.
var GroupVersionResource = GroupVersion.WithResource(Resource)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &ErgomakeEnv{}, &ErgomakeEnvList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
