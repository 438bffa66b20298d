#!/bin/sh
set -e
echo "waiting for $DATABASE_URL"
exec worker --concurrency 4
