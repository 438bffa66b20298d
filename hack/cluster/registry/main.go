// Command registry is the in-cluster registry `ergomake install` runs: distribution's registry
// (github.com/distribution/distribution/v3, the version go.mod pins) as its cmd/registry builds it,
// with only the storage drivers ergomake configures (the filesystem, and inmemory for tests) and
// htpasswd basic auth (the e2e tests' second registry, a user's registry for `--registry`): no
// cloud storage SDKs, so it builds in about half the time. hack/cluster/image.sh builds it into
// the local cluster's image (make registry-image); a release publishes it with ko.
//
//	registry serve /etc/distribution/config.yml
package main

import (
	"os"

	"github.com/distribution/distribution/v3/registry"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func main() {
	if err := registry.RootCmd.Execute(); err != nil {
		os.Exit(1)
	}
}
