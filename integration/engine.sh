#!/usr/bin/env bash
# Docker engine and images for dask-cli's integration suite, from the project's own files.
#
# Sourced by integration/run.sh; also runnable on its own:
#   integration/engine.sh packages   install docker.io, docker-compose, debootstrap if missing
#   integration/engine.sh base       build + import the base image (skipped when it exists)
#   integration/engine.sh wheels     wheels of the project and its dependencies (cached)
#
# Why: no image registry is reachable here, so the base image comes from debootstrap
# and `docker import`, and everything Python goes into the image as wheels built on
# the host (pip inside a container fails TLS verification against the registry).
set -euo pipefail

INTEGRATION_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(dirname "$INTEGRATION_DIR")"
# Persistent cache: the engine's image store and the base rootfs tarball survive runs,
# so the base image and unchanged layers are built once.
CACHE_DIR="${DASK_CLI_INTEGRATION_CACHE:-/var/tmp/dask-cli-integration}"
BASE_IMAGE="${BASE_IMAGE:-dask-cli-base:bookworm}"
WHEEL_DIR="$REPO_DIR/build/integration-wheels"
PY="${DASK_CLI_PYTHON:-$REPO_DIR/.venv/bin/python}"
ENGINE_STARTED_BY_US=""
ENGINE_RUN_DIR=""

die() {
    echo "integration: ERROR: $*" >&2
    exit 1
}

log() {
    echo "integration: $*" >&2
}

# The Debian mirror this machine's apt uses (deb822 or one-line sources).
debian_mirror() {
    local mirror
    mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/* \
        | grep -E 'debian/?$|/debian( |$)' | grep -v security | head -1 \
        | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' \
        | awk '{print $1}' || true)
    echo "${mirror:-http://deb.debian.org/debian}"
}

ensure_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || die "need ${missing[*]} and am not root to install them"
        log "installing ${missing[*]} from Debian"
        apt-get update -qq || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
            || die "apt-get install ${missing[*]} failed"
    fi
}

engine_answers() {
    timeout 10 docker info >/dev/null 2>&1
}

# Use a running engine if one answers; otherwise start dockerd with its exec root and
# socket in a fresh temporary directory (data root in the cache, to keep images).
start_engine() {
    if engine_answers; then
        log "using the running Docker engine (${DOCKER_HOST:-default socket})"
        return
    fi
    [ "$(id -u)" = 0 ] || die "no Docker engine answers and starting dockerd needs root"
    ENGINE_RUN_DIR=$(mktemp -d /tmp/dask-cli-engine.XXXXXX)
    mkdir -p "$CACHE_DIR/docker-data"
    export DOCKER_HOST="unix://$ENGINE_RUN_DIR/docker.sock"
    log "starting dockerd (socket $ENGINE_RUN_DIR/docker.sock, log $ENGINE_RUN_DIR/dockerd.log)"
    dockerd \
        --data-root "$CACHE_DIR/docker-data" \
        --exec-root "$ENGINE_RUN_DIR/exec" \
        --pidfile "$ENGINE_RUN_DIR/dockerd.pid" \
        -H "$DOCKER_HOST" \
        >"$ENGINE_RUN_DIR/dockerd.log" 2>&1 9>&- &
    ENGINE_STARTED_BY_US=$!
    local i
    for i in $(seq 1 120); do
        if engine_answers; then
            return
        fi
        if ! kill -0 "$ENGINE_STARTED_BY_US" 2>/dev/null; then
            tail -20 "$ENGINE_RUN_DIR/dockerd.log" >&2 || true
            die "dockerd exited while starting (log above)"
        fi
        sleep 0.5
    done
    tail -20 "$ENGINE_RUN_DIR/dockerd.log" >&2 || true
    die "dockerd did not answer within 60 s (log above)"
}

stop_engine() {
    if [ -n "$ENGINE_STARTED_BY_US" ]; then
        log "stopping the dockerd we started (pid $ENGINE_STARTED_BY_US)"
        kill "$ENGINE_STARTED_BY_US" 2>/dev/null || true
        local i
        for i in $(seq 1 60); do
            kill -0 "$ENGINE_STARTED_BY_US" 2>/dev/null || break
            sleep 0.5
        done
        kill -9 "$ENGINE_STARTED_BY_US" 2>/dev/null || true
        ENGINE_STARTED_BY_US=""
        rm -rf "$ENGINE_RUN_DIR" 2>/dev/null || true
    fi
}

# Base image: Debian bookworm minbase with python3, from debootstrap (no registry needed).
build_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base image $BASE_IMAGE exists: skipping debootstrap"
        return
    fi
    local tarball="$CACHE_DIR/base-bookworm.tar"
    if [ ! -s "$tarball" ]; then
        command -v debootstrap >/dev/null || die "debootstrap missing"
        local rootfs
        rootfs=$(mktemp -d /tmp/dask-cli-rootfs.XXXXXX)
        local mirror
        mirror=$(debian_mirror)
        log "debootstrap bookworm from $mirror into $rootfs"
        debootstrap --variant=minbase \
            --include=python3,python3-venv,python3-pip,ca-certificates \
            bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
            || { tail -20 "$rootfs.log" >&2; die "debootstrap failed (log above)"; }
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        mkdir -p "$CACHE_DIR"
        tar -C "$rootfs" -c . >"$tarball.tmp" && mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs" "$rootfs.log"
    fi
    log "importing $tarball as $BASE_IMAGE"
    docker import "$tarball" "$BASE_IMAGE" >/dev/null || die "docker import failed"
}

# Wheels for the image: dependencies (rebuilt only when pyproject.toml changes) and the
# project itself (rebuilt every run: cheap, and the image layer is reused when unchanged).
build_wheels() {
    local deps="$WHEEL_DIR/deps" project="$WHEEL_DIR/project"
    local stamp="$deps/.pyproject.sha256" want
    want=$(sha256sum "$REPO_DIR/pyproject.toml" | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "building dependency wheels into $deps"
        rm -rf "$deps"
        mkdir -p "$deps"
        "$PY" -m pip wheel --quiet --wheel-dir "$deps" "$REPO_DIR" >"$WHEEL_DIR/pip.log" 2>&1 \
            || { tail -30 "$WHEEL_DIR/pip.log" >&2; die "pip wheel of the dependencies failed"; }
        rm -f "$deps"/dask_cli-*.whl
        echo "$want" >"$stamp"
    else
        log "dependency wheels up to date"
    fi
    rm -rf "$project"
    mkdir -p "$project"
    "$PY" -m pip wheel --quiet --no-deps --wheel-dir "$project" "$REPO_DIR" >"$WHEEL_DIR/pip.log" 2>&1 \
        || { tail -30 "$WHEEL_DIR/pip.log" >&2; die "pip wheel of the project failed"; }
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case "${1:-}" in
        packages) ensure_packages ;;
        base) start_engine; trap stop_engine EXIT; build_base_image ;;
        wheels) build_wheels ;;
        *) sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
fi
