// Package v1alpha1 holds the ErgomakeEnv custom resource: the contract between the ergomake CLI,
// which writes the spec from a compose project, and the operator, which reconciles it into
// Kubernetes objects and reports status. It imports apimachinery only.
//
// +kubebuilder:object:generate=true
// +groupName=ergomake.dev
package v1alpha1
