#!/bin/sh
set -eu
echo "tools ready"
exec sleep infinity
