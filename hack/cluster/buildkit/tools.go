//go:build tools

// Package tools pins the commands this module builds into the local cluster's builder image:
// BuildKit's daemon and client, and a static runc for its OCI worker.
package tools

import (
	_ "github.com/moby/buildkit/cmd/buildctl"
	_ "github.com/moby/buildkit/cmd/buildkitd"
	_ "github.com/opencontainers/runc"
)
