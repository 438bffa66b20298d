#!/usr/bin/env bash
# make builder-image: the in-cluster builder's image for the local cluster, built from source with
# this module's pinned versions: BuildKit's daemon (buildkitd, OCI worker) and client (buildctl:
# the readiness probe, and builds by hand), and a static runc for the OCI worker (the Debian runc
# is dynamically linked). A static runc needs cgo and libseccomp-dev (cluster-up installs it).
# The binaries are rebuilt only when this module (go.mod, go.sum, this script) or Go changes; the
# image is then assembled and loaded by hack/cluster/image.sh, which skips unchanged images.
#   hack/cluster/buildkit/image.sh [--rootless] [image.sh options] NAME:TAG
# Cold build on 2 cores: about 6 min (see hack/cluster/README.md).
#
# --rootless: the rootless image instead (`ergomake install --builder-mode rootless`), set up as
# BuildKit's official moby/buildkit:VERSION-rootless: user 1000 ("user", home /home/user) with
# subordinate ids 100000-165535 (/etc/subuid, /etc/subgid), RootlessKit (hack/cluster/rootless,
# from the module proxy) and setuid-root newuidmap/newgidmap (hack/cluster/rootless/newidmap:
# shadow's rules, static), entrypoint `rootlesskit buildkitd`.
PROG=${PROG:-builder-image}
source "$(dirname "$0")/../lib.sh"
rootless=0
if [ "${1:-}" = --rootless ]; then
	rootless=1
	shift
fi
[ $# -ge 1 ] || die "usage: hack/cluster/buildkit/image.sh [--rootless] [image.sh options] NAME:TAG"
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
files=(--file "$out/buildkitd=/usr/bin/buildkitd" --file "$out/buildctl=/usr/bin/buildctl" --file "$out/runc=/usr/bin/runc")
[ "$rootless" = 1 ] || exec "$HACK/image.sh" --entrypoint /usr/bin/buildkitd "${files[@]}" --env BUILDKIT_HOST=tcp://127.0.0.1:1234 "$@"

# the rootless image: RootlessKit and newuidmap/newgidmap, rebuilt when hack/cluster/rootless or Go changes
rout=$IMG/bin/builder-rootless
rkey=$(src_key "$HACK/rootless")
mkdir -p "$rout/etc"
if [ "$(cat "$rout/.key" 2>/dev/null)" != "$rkey" ] || [ ! -x "$rout/rootlesskit" ] || [ ! -x "$rout/newidmap" ]; then
	say "building rootlesskit and newuidmap/newgidmap (log: $log)"
	rm -f "$rout/.key"
	cd "$HACK/rootless"
	run_logged "$log" env CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -tags "netgo osusergo" -ldflags "-s -w" \
		-o "$rout/" github.com/rootless-containers/rootlesskit/v2/cmd/rootlesskit ./newidmap
	echo "$rkey" >"$rout/.key"
fi
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' >"$rout/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' >"$rout/etc/group"
echo user:100000:65536 >"$rout/etc/subuid"
echo user:100000:65536 >"$rout/etc/subgid"
home=/home/user
exec "$HACK/image.sh" --entrypoint /usr/bin/rootlesskit --entrypoint-arg buildkitd "${files[@]}" \
	--file "$rout/rootlesskit=/usr/bin/rootlesskit" \
	--file "$rout/newidmap=/usr/bin/newuidmap" --file "$rout/newidmap=/usr/bin/newgidmap" \
	--mode /usr/bin/newuidmap=4755 --mode /usr/bin/newgidmap=4755 \
	--file "$rout/etc/passwd=/etc/passwd" --file "$rout/etc/group=/etc/group" \
	--file "$rout/etc/subuid=/etc/subuid" --file "$rout/etc/subgid=/etc/subgid" \
	--dir /run/user/1000 --dir $home/.local/tmp --dir $home/.local/share/buildkit \
	--owner /run/user/1000=1000:1000 --mode /run/user/1000=700 --owner $home=1000:1000 --owner $home/.local=1000:1000 \
	--owner $home/.local/tmp=1000:1000 --owner $home/.local/share=1000:1000 --owner $home/.local/share/buildkit=1000:1000 \
	--user 1000:1000 --env HOME=$home --env USER=user --env XDG_RUNTIME_DIR=/run/user/1000 --env TMPDIR=$home/.local/tmp \
	--env BUILDKIT_HOST=tcp://127.0.0.1:1234 "$@"
