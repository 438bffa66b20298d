//go:build tools

// Package tools pins the registry the local cluster and `ergomake install` use: the Distribution
// project's cmd/registry, built into an image by hack/cluster/image.sh.
package tools

import _ "github.com/distribution/distribution/v3/cmd/registry"
