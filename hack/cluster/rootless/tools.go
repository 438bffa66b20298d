//go:build tools

// Package tools pins RootlessKit, which the local cluster's rootless builder image runs buildkitd
// under (hack/cluster/buildkit/image.sh --rootless).
package tools

import (
	_ "github.com/rootless-containers/rootlesskit/v2/cmd/rootlesskit"
)
