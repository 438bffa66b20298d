#!/usr/bin/env bash
# make builder-image: the in-cluster builder's image for the local cluster, built from source with
# this module's pinned versions: BuildKit's daemon (buildkitd, OCI worker) and client (buildctl:
# the readiness probe, and builds by hand), and a static runc for the OCI worker (the Debian runc
# is dynamically linked). A static runc needs cgo and libseccomp-dev (cluster-up installs it).
# The binaries are rebuilt only when this module (go.mod, go.sum, this script) or Go changes; the
# image is then assembled and loaded by hack/cluster/image.sh, which skips unchanged images.
#   hack/cluster/buildkit/image.sh [image.sh options] NAME:TAG
# Cold build on 2 cores: about 6 min (see hack/cluster/README.md).
PROG=${PROG:-builder-image}
source "$(dirname "$0")/../lib.sh"
[ $# -ge 1 ] || die "usage: hack/cluster/buildkit/image.sh [image.sh options] NAME:TAG"
dpkg -s libseccomp-dev >/dev/null 2>&1 || die "libseccomp-dev missing (apt-get install libseccomp-dev; make cluster-start installs it)"
out=$IMG/bin/builder
log=$LOGS/builder-image.log
key=$(src_key "$HACK/buildkit")
mkdir -p "$out"
if [ "$(cat "$out/.key" 2>/dev/null)" != "$key" ] || [ ! -x "$out/buildkitd" ] || [ ! -x "$out/buildctl" ] || [ ! -x "$out/runc" ]; then
	say "building buildkitd, buildctl and a static runc (cold: about 6 min on 2 cores; log: $log)"
	rm -f "$out/.key"
	cd "$HACK/buildkit"
	run_logged "$log" env CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -tags "netgo osusergo" -ldflags "-s -w" \
		-o "$out/" github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl
	run_logged "$log" env CGO_ENABLED=1 GOOS=linux GOARCH=amd64 go build -trimpath -tags "seccomp netgo osusergo" \
		-ldflags "-s -w -extldflags -static" -o "$out/runc" github.com/opencontainers/runc
	file_out=$("$out/runc" --version 2>&1 | head -n 1) || die "the static runc does not run: $file_out" "$log"
	echo "$key" >"$out/.key"
	say "built buildkitd, buildctl and $file_out"
fi
exec "$HACK/image.sh" --entrypoint /usr/bin/buildkitd \
	--file "$out/buildkitd=/usr/bin/buildkitd" --file "$out/buildctl=/usr/bin/buildctl" --file "$out/runc=/usr/bin/runc" \
	--env BUILDKIT_HOST=tcp://127.0.0.1:1234 "$@"
