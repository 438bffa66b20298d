package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/ergomake/ergomake/internal/clustersettings"
	"github.com/ergomake/ergomake/internal/kube"
)

// BuilderInfo is GET /v1/builder's answer: where the images a user builds through the server
// (GET /v1/builder/dial) go, so the CLI plans its builds as it does with a kubeconfig.
type BuilderInfo struct {
	// RegistryPush is where the builder pushes; RegistryPull the same registry as the nodes pull
	// from it; Insecure: it speaks plain HTTP.
	RegistryPush string `json:"registryPush"`
	RegistryPull string `json:"registryPull,omitempty"`
	Insecure     bool   `json:"insecure,omitempty"`
	// Platforms are the nodes' platforms (os/arch), which images are built for; none when the
	// server cannot list the nodes (the builder's own platform then).
	Platforms []string `json:"platforms,omitempty"`
}

// builderInfo answers GET /v1/builder from the cluster's settings (ergomake install): 404 when the
// cluster has no builder or registry.
func (h *Handler) builderInfo(c *call) (any, error) {
	s, err := clustersettings.Read(c.r.Context(), h.tenancy.Kube, h.tenancy.Namespace)
	switch {
	case errors.Is(err, clustersettings.ErrNotInstalled):
		return nil, errorf(http.StatusNotFound, "this cluster has no image builder: ask your admin to run `ergomake install`")
	case err != nil:
		return nil, err
	case s.BuilderSelector == "" || s.BuilderPort == 0:
		return nil, errorf(http.StatusNotFound, "this cluster has no image builder: ask your admin to run `ergomake install`")
	case s.RegistryPush == "":
		return nil, errorf(http.StatusNotFound, "this cluster has no registry for built images: ask your admin to run `ergomake install`")
	}
	return BuilderInfo{RegistryPush: s.RegistryPush, RegistryPull: s.RegistryPull, Insecure: true,
		Platforms: kube.NodePlatforms(c.r.Context(), h.tenancy.Kube)}, nil
}

// Builder asks the server where built images go (GET /v1/builder).
func (c *Client) Builder(ctx context.Context) (BuilderInfo, error) {
	var b BuilderInfo
	return b, c.do(ctx, http.MethodGet, "/v1/builder", nil, &b)
}
