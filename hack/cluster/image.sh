#!/usr/bin/env bash
# Builds a container image from a Go main package (static binary, no Docker, no registry) and
# imports it into the local cluster's containerd when the cluster runs (otherwise cluster-up
# imports it when it starts).
#
#   hack/cluster/image.sh [options] NAME:TAG [PACKAGE]
#     -C DIR            build PACKAGE in the Go module at DIR (default: the repository root)
#     --entrypoint P    image entrypoint (default /<last element of PACKAGE>; required without PACKAGE)
#     --entrypoint-arg A  a further element of the entrypoint (repeatable)
#     --file HOST=/PATH also put the host file HOST at /PATH (repeatable; e.g. prebuilt binaries)
#     --cmd ARG         default command element (repeatable)
#     --env K=V         environment variable (repeatable)
#     --port P/proto    exposed port (repeatable)
#     --user UID:GID    user the image runs as (default root)
#     --dir /PATH       an empty directory (repeatable)
#     --mode /PATH=OCT  mode of a file or directory, e.g. /usr/bin/newuidmap=4755 (setuid root; repeatable)
#     --owner /PATH=U:G owner of a file or directory (default root; repeatable)
#     --no-shell        leave out busybox (/bin/sh, wget, nslookup, ...)
#     --no-import       only build the tarball
#
# Without PACKAGE nothing is built: the image holds the --file files (and busybox).
# Example: hack/cluster/image.sh ergomake.test/ergomake-operator:dev ./cmd/ergomake-operator
# Pods using a :latest or :dev tag need imagePullPolicy IfNotPresent (or Never): there is no registry.
PROG=${PROG:-image}
source "$(dirname "$0")/lib.sh"

dir=$REPO entry="" shell=1 import=1
extra=() files=()
while [ $# -gt 0 ]; do
	case "$1" in
	-C) dir=$2; shift 2 ;;
	--entrypoint) entry=$2; shift 2 ;;
	--entrypoint-arg) extra+=(-entrypoint "$2"); shift 2 ;;
	--cmd) extra+=(-cmd "$2"); shift 2 ;;
	--env) extra+=(-env "$2"); shift 2 ;;
	--port) extra+=(-port "$2"); shift 2 ;;
	--user) extra+=(-user "$2"); shift 2 ;;
	--dir) extra+=(-dir "$2"); shift 2 ;;
	--mode) extra+=(-mode "$2"); shift 2 ;;
	--owner) extra+=(-owner "$2"); shift 2 ;;
	--file) files+=("$2"); shift 2 ;;
	--no-shell) shell=0; shift ;;
	--no-import) import=0; shift ;;
	-h | --help) sed -n '2,23p' "$0"; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done
[ $# = 2 ] || [ $# = 1 -a -n "$entry" ] || die "usage: image.sh [options] NAME:TAG [PACKAGE] (see --help)"
ref=$1 pkg=${2:-}
dir=$(cd "$dir" && pwd)
safe=$(echo "$ref" | tr '/:@' '___')
mkdir -p "$IMG/bin/$safe" "$D/tools" "$LOGS"
log=$LOGS/image-$safe.log

# mkimage, rebuilt when its sources change
mk_key=$(src_key "$HACK/images")
if [ ! -x "$D/tools/mkimage" ] || [ "$(cat "$D/tools/mkimage.key" 2>/dev/null)" != "$mk_key" ]; then
	(cd "$HACK/images" && run_logged "$LOGS/mkimage.log" env CGO_ENABLED=0 go build -trimpath -o "$D/tools/mkimage" ./mkimage)
	echo "$mk_key" >"$D/tools/mkimage.key"
fi

# the binary: go build is incremental, so this is quick when nothing changed
if [ -n "$pkg" ]; then
	bin=$(basename "$(cd "$dir" && realpath -m "$pkg")")
	[ -n "$entry" ] || entry=/$bin
	(cd "$dir" && run_logged "$log" env CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "-s -w" -o "$IMG/bin/$safe/$bin" "$pkg")
fi
[ -n "$pkg" ] || [ ${#files[@]} -gt 0 ] || die "nothing to put in $ref: give a PACKAGE or --file"
if [ "$shell" = 1 ]; then
	[ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"
	extra+=(-busybox /bin/busybox)
fi
key=$({
	echo "$ref" "$entry" "${extra[@]}" "$mk_key"
	[ -z "$pkg" ] || sha256sum "$IMG/bin/$safe/$bin"
	for f in ${files[@]+"${files[@]}"}; do
		echo "${f#*=}"
		sha256sum "${f%%=*}"
	done
	[ "$shell" = 0 ] || sha256sum /bin/busybox
} | sha256sum | cut -c1-16)
tar=$IMG/$safe.tar
if [ ! -f "$tar" ] || [ "$(cat "$IMG/$safe.key" 2>/dev/null)" != "$key" ]; then
	bins=()
	[ -z "$pkg" ] || bins=("$IMG/bin/$safe/$bin=/${entry#/}")
	run_logged "$log" "$D/tools/mkimage" -ref "$ref" -out "$tar" -entrypoint "$entry" "${extra[@]}" ${bins[@]+"${bins[@]}"} ${files[@]+"${files[@]}"}
	echo "$key" >"$IMG/$safe.key"
	echo "$ref" >"$IMG/$safe.ref"
	say "built image $ref ($tar)"
fi

# import into containerd when it runs and does not have this build yet
if [ "$import" = 1 ] && [ -S "$SOCK" ] && "${CTR[@]}" version >/dev/null 2>&1; then
	mkdir -p "$ST/imported"
	if [ "$(cat "$ST/imported/$safe" 2>/dev/null)" != "$key" ]; then
		run_logged "$log" "${CTR[@]}" images import "$tar"
		echo "$key" >"$ST/imported/$safe"
		say "imported image $ref into the cluster"
	fi
fi
