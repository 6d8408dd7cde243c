#!/usr/bin/env bash
# The whole integration suite, one command: engine, images, tests, teardown.
#
#   integration/run.sh [PYTEST ARGS...]
#
# Installs docker.io/docker-compose/debootstrap when missing (Debian), starts dockerd
# when no engine answers (and stops it at the end), builds the base image (cached) and
# the project image from host-built wheels, then runs `pytest integration/`, which
# brings the compose cluster up and down. Prints the wall time of each phase.
# Exits non-zero whenever the suite did not run and pass: never a silent skip.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/engine.sh"
cd "$REPO_DIR"
[ -x "$PY" ] || die "no Python at $PY (run ./dev test once to create .venv)"
# One run at a time: a second dockerd on the same data root would corrupt it.
mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/run.lock"
flock -w 1800 9 || die "another integration run holds $CACHE_DIR/run.lock"

PHASES=()
phase_start=0
begin() {
    phase_name=$1
    phase_start=$(date +%s.%N)
    log "== $phase_name"
}
end() {
    local took
    took=$(awk -v a="$phase_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
    PHASES+=("$(printf '%-16s %7s s' "$phase_name" "$took")")
}
finish() {
    local rc=$?
    stop_engine
    echo "integration: phase wall times:" >&2
    local line
    for line in "${PHASES[@]}"; do
        echo "  $line" >&2
    done
    if [ "$rc" -ne 0 ]; then
        echo "integration: FAILED (exit $rc)" >&2
    fi
    exit "$rc"
}
trap finish EXIT

begin "packages";      ensure_packages;  end
begin "engine start";  start_engine;     end
begin "base image";    build_base_image; end
begin "wheels";        build_wheels;     end
begin "project image"
docker-compose build >"$WHEEL_DIR/compose-build.log" 2>&1 \
    || { tail -40 "$WHEEL_DIR/compose-build.log" >&2; die "docker-compose build failed (log above)"; }
# Earlier builds of the project image, now untagged, would pile up in our cache
# (only in the engine we started: never prune someone else's images).
if [ -n "$ENGINE_STARTED_BY_US" ]; then
    docker image prune -f >/dev/null || true
fi
end
begin "tests"
# The fixture rebuilds nothing now (DASK_CLI_INTEGRATION_BUILT) and tears the cluster down.
rc=0
DASK_CLI_INTEGRATION_BUILT=1 "$PY" -m pytest -p no:cacheprovider integration/ "$@" || rc=$?
end
exit "$rc"
