#!/usr/bin/env bash
# make cluster-seed (the last step of make cluster-up): pushes the images builds start from into the
# in-cluster registry through the node relay on 127.0.0.1:$RELAY_PORT, so that builds work with no
# network: the test image as ergomake.test/testapp:latest and a busybox image (the host's static
# /bin/busybox with every applet linked) as busybox:latest, i.e. docker.io/library/busybox.
# The builder's mirrors (make operator-install: --builder-mirror docker.io --builder-mirror
# ergomake.test) look for FROM busybox as library/busybox and for ergomake.test/testapp as
# ergomake.test/testapp, the paths pushed here.
# Idempotent and quick: blobs the registry has are not sent again. The registry must be installed
# (make operator-install).
PROG=cluster-seed
source "$(dirname "$0")/lib.sh"
RELAY=127.0.0.1:$RELAY_PORT
mkdir -p "$D/tools" "$IMG/seed" "$LOGS"
log=$LOGS/seed.log

# the tools, rebuilt when hack/cluster/images changes (image.sh keeps mkimage the same way)
tools_key=$(src_key "$HACK/images")
for t in mkimage push; do
	if [ ! -x "$D/tools/$t" ] || [ "$(cat "$D/tools/$t.key" 2>/dev/null)" != "$tools_key" ]; then
		(cd "$HACK/images" && run_logged "$LOGS/$t.log" env CGO_ENABLED=0 go build -trimpath -o "$D/tools/$t" "./$t")
		echo "$tools_key" >"$D/tools/$t.key"
	fi
done

# busybox:latest, rebuilt when busybox or mkimage changes
[ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install busybox-static)"
bb=$IMG/seed/busybox.tar
bb_key=$({ sha256sum /bin/busybox; echo "$tools_key"; } | sha256sum | cut -c1-16)
if [ ! -f "$bb" ] || [ "$(cat "$bb.key" 2>/dev/null)" != "$bb_key" ]; then
	run_logged "$log" "$D/tools/mkimage" -ref busybox:latest -out "$bb" -cmd sh -busybox /bin/busybox -all-applets
	echo "$bb_key" >"$bb.key"
fi
testapp=$IMG/$(echo "$TESTAPP_IMAGE" | tr '/:@' '___').tar
[ -f "$testapp" ] || die "$testapp missing (make cluster-start builds it)"

# the relay answers once `ergomake install` has waited for it; a short wait covers a restart
end=$((SECONDS + 60))
until curl -sf -o /dev/null "http://$RELAY/v2/"; do
	[ "$SECONDS" -lt "$end" ] || die "the registry does not answer on $RELAY (is it installed? make operator-install; kubectl -n ergomake-system get pods)" "$log"
	sleep 0.5
done
run_logged "$log" "$D/tools/push" "$testapp=$RELAY/$TESTAPP_IMAGE" "$bb=$RELAY/library/busybox:latest"
say "registry seeded: $RELAY/$TESTAPP_IMAGE, $RELAY/library/busybox:latest"
