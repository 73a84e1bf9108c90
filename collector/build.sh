#!/usr/bin/env bash
# Build the otelcol-otel-sentry collector distribution from collector/manifest.yaml.
#
# The result lives outside the checkout, in a cache directory keyed by a hash of the manifest
# and the builder version, so a CI re-run (or a second test session) finds the binary and
# returns at once; a changed manifest builds into a fresh directory. Prints the binary's path
# on stdout (everything else goes to stderr).
#
#   collector/build.sh            # build if missing, print the path
#   OTEL_SENTRY_COLLECTOR_CACHE=/some/dir collector/build.sh
set -euo pipefail

BUILDER_VERSION="v0.161.0"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/manifest.yaml"

command -v go >/dev/null 2>&1 || { echo "build.sh: Go is required (https://go.dev/dl/)" >&2; exit 2; }

sha256() { if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi; }
hash="$( (cat "$manifest"; echo "$BUILDER_VERSION") | sha256 | cut -c1-16)"
cache_root="${OTEL_SENTRY_COLLECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/otel-sentry/collector}"
out="$cache_root/$hash"
binary="$out/dist/otelcol-otel-sentry"

if [ -x "$binary" ]; then
  echo "$binary"
  exit 0
fi

mkdir -p "$out"
gobin="$(go env GOPATH)/bin"
builder="$gobin/builder"
if ! { [ -x "$builder" ] && "$builder" version 2>&1 | grep -q "${BUILDER_VERSION#v}"; }; then
  echo "build.sh: installing the collector builder $BUILDER_VERSION" >&2
  go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION" >&2
fi

# One builder at a time per cache directory: concurrent test sessions wait for the first.
exec 9>"$out/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi  # util-linux; macOS has none
if [ ! -x "$binary" ]; then
  echo "build.sh: building otelcol-otel-sentry into $out (a cold build takes minutes)" >&2
  start=$(date +%s)
  # output_path in the manifest is relative: run the builder from the cache directory.
  (cd "$out" && "$builder" --config="$manifest" >&2)
  echo "build.sh: built in $(( $(date +%s) - start ))s" >&2
fi
echo "$binary"
