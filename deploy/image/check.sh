#!/usr/bin/env bash
# The image, built with podman and run against PostgreSQL (`make image-check`; docs/image.md).
#
# 1. The Dockerfile's FROM image is pulled; when no registry answers, a stand-in is built from
#    Debian bookworm's packages (debootstrap) and tagged with the FROM name. The stand-in is a test
#    device, not what production builds on; it is kept in podman's store for the next run.
# 2. `podman build --format docker` (the Docker format keeps HEALTHCHECK).
# 3. Against a throwaway database on PostgreSQL (127.0.0.1:5432, dropped at the end), each container
#    locked down as Kubernetes runs it (read-only root, tmpfs for its emptyDirs, no capability):
#    `init-db` and `demo-data` with DATABASE_URL alone, the server on a free port, /health/ready, an
#    authenticated list with a token from the image's own `issue-token`, uid 10001, /metrics, and
#    `podman healthcheck run`.
# Every container it starts is removed by name at exit. Needs root, podman, runc, debootstrap,
# curl, psql. Settings: PGHOST/PGPORT/PGUSER (127.0.0.1, 5432, postgres), IMAGE_CHECK_TAG.
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE_CHECK_TAG:-localhost/encounters:check}
PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export PGHOST PGPORT PGUSER
STAND_IN_LABEL=encounters.stand-in
# A development-only secret for this throwaway run.
SECRET=image-check-only-secret-0123456789abcdef

say() { printf '== image-check: %s\n' "$*"; }
fail() { printf 'image-check: FAILED: %s\n' "$*" >&2; exit 1; }
elapsed() { echo "$((SECONDS - $1)) s"; }

work=$(mktemp -d /var/tmp/image-check.XXXXXX)
database="image_check_$$"
server="encounters-check-$$-server"
cli="encounters-check-$$-cli"
cleanup() {
    status=$?
    podman rm --force --ignore --time 5 "$server" "$cli" >/dev/null 2>&1 || true
    psql -q -d postgres -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# crun fails on hybrid cgroups here, and podman's default ulimits exceed the host's.
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
EOF
export CONTAINERS_CONF="$work/containers.conf"

# --- the base: pulled, or the stand-in ------------------------------------------------------------

# docker.io/library/python:3.11-slim-bookworm for python:3.11-slim-bookworm, as podman resolves it.
qualified() {
    local name=$1 first=${1%%/*}
    if [[ $name != */* ]]; then
        echo "docker.io/library/$name"
    elif [[ $first == *.* || $first == *:* || $first == localhost ]]; then
        echo "$name"
    else
        echo "docker.io/$name"
    fi
}

# The Debian mirror the host's apt uses for bookworm (deb822 or one-line sources).
debian_mirror() {
    local uri
    uri=$(awk '
        /^URIs:/ { uris = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm" && uris) { print uris; exit } }
        /^deb / && $3 == "bookworm" { print $2; exit }
    ' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1)
    echo "${uri:-http://deb.debian.org/debian}"
}

# What pip inside the build needs to reach PyPI as the host does, read here at run time: the CA
# bundle (copied in), and any http(s) index the host's pip names. File indexes stay on the host.
pip_environment() {
    echo 'PIP_CERT=/etc/ssl/certs/ca-certificates.crt'
    local key name value
    for key in index-url extra-index-url trusted-host; do
        name=PIP_${key^^} && name=${name//-/_}
        value=${!name:-$(python3 -m pip config get "global.$key" 2>/dev/null || true)}
        if [[ $key != trusted-host ]]; then
            value=$(tr ' ' '\n' <<<"$value" | grep -E '^https?://' | paste -sd' ' || true)
        fi
        [[ -z $value ]] || echo "$name=\"$value\""
    done
}

build_stand_in() {
    local base=$1 root="$work/rootfs" mirror
    mirror=$(debian_mirror)
    say "no registry answers: building the stand-in for $base from Debian bookworm ($mirror)"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
    ln -sf python3 "$root/usr/bin/python"
    # pip inside the build must trust what the host trusts (an egress proxy's CA included).
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    local changes=(
        --change "LABEL $STAND_IN_LABEL=debootstrap-bookworm"
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        --change "ENV LANG=C.UTF-8"
        --change 'CMD ["python3"]'
    )
    local setting
    while read -r setting; do
        [[ -n $setting ]] && changes+=(--change "ENV $setting")
    done < <(pip_environment)
    tar -C "$root" --numeric-owner -cf - . | podman import --quiet "${changes[@]}" - "$base" >/dev/null
    rm -rf "$root"
}

from=$(awk 'toupper($1) == "FROM" { print $2; exit }' Dockerfile)
base=$(qualified "$from")
started=$SECONDS
if timeout 120 podman pull --quiet "$base" >"$work/pull.log" 2>&1; then
    say "pulled $base ($(elapsed "$started"))"
elif [[ -n $(podman image inspect --format "{{index .Labels \"$STAND_IN_LABEL\"}}" "$base" 2>/dev/null) ]]; then
    say "no registry answers: using the stand-in for $base already in podman's store"
else
    build_stand_in "$base"
    say "stand-in $base built ($(elapsed "$started"))"
fi

# --- the build -----------------------------------------------------------------------------------

started=$SECONDS
build_args=()
for proxy in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
    [[ -n ${!proxy:-} ]] && build_args+=(--build-arg "$proxy=${!proxy}")
done
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
podman build --format docker --network host --pull=never "${build_args[@]}" -t "$IMAGE" . \
    >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; fail "podman build"; }
# The image of the previous run, now untagged (its layers stay as the build cache).
if [[ -n $previous && $previous != $(podman image inspect --format '{{.Id}}' "$IMAGE") ]]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
fi
say "built $IMAGE ($(elapsed "$started"))"

# --- the run, as Kubernetes runs it --------------------------------------------------------------

started=$SECONDS
psql -q -d postgres -c "CREATE DATABASE $database" >/dev/null
url="postgresql+psycopg://$PGUSER@$PGHOST:$PGPORT/$database"
# As deploy/kubernetes runs it: no capability, no privilege escalation, the default seccomp profile,
# a read-only root, and in-memory folders at /tmp (gunicorn's worker_tmp_dir) and for the metrics.
# shellcheck disable=SC2054  # the commas separate tmpfs options, not array elements
locked_down=(--cap-drop=ALL --security-opt=no-new-privileges
    --read-only --read-only-tmpfs=false
    --tmpfs /tmp:rw,nosuid,nodev,size=64m,mode=1777
    --tmpfs /run/metrics:rw,nosuid,nodev,size=64m,mode=1777)
run_cli() {
    podman run --rm --name "$cli" --network host "${locked_down[@]}" \
        -e DATABASE_URL="$url" "$IMAGE" flask --app wsgi "$@"
}
run_cli init-db >"$work/init-db.log" 2>&1 || { cat "$work/init-db.log" >&2; fail "init-db"; }
run_cli demo-data --students 50 >"$work/demo.log" 2>&1 || { cat "$work/demo.log" >&2; fail "demo-data"; }
say "init-db and demo-data with DATABASE_URL alone: $(tail -1 "$work/demo.log")"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# BIND alone (PORT stays the image's 8000) keeps the server on loopback, on a free port: the
# HEALTHCHECK must probe where BIND says. Podman's timer for the periodic check needs systemd
# (absent here: it logs an error and the container runs on), and `podman healthcheck run` below
# runs the same check itself.
podman run --detach --name "$server" --network host "${locked_down[@]}" \
    -e DATABASE_URL="$url" -e JWT_SECRET="$SECRET" -e BIND="127.0.0.1:$port" \
    -e WEB_CONCURRENCY=2 -e PROMETHEUS_MULTIPROC_DIR=/run/metrics \
    "$IMAGE" >/dev/null 2>"$work/run.log" || { cat "$work/run.log" >&2; fail "podman run"; }
base_url="http://127.0.0.1:$port"
for _ in $(seq 120); do
    curl -fsS -o /dev/null "$base_url/health/ready" 2>/dev/null && break
    [[ $(podman inspect --format '{{.State.Running}}' "$server") == true ]] \
        || { podman logs "$server" >&2; fail "the server exited"; }
    sleep 0.5
done
curl -fsS -o /dev/null "$base_url/health/ready" || { podman logs "$server" >&2; fail "/health/ready"; }
say "server ready on port $port ($(elapsed "$started"))"

token=$(podman exec "$server" flask --app wsgi issue-token SM-0001 --role StaffMember --ttl 300)
status=$(curl -sS -o "$work/list.json" -w '%{http_code}' \
    -H "Authorization: Bearer $token" "$base_url/users/ST-000001/encounters")
[[ $status == 200 ]] || { cat "$work/list.json" >&2; fail "authenticated list answered $status"; }
count=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$work/list.json")
[[ $count -gt 0 ]] || fail "authenticated list is empty"
status=$(curl -sS -o /dev/null -w '%{http_code}' "$base_url/users/ST-000001/encounters")
[[ $status == 401 ]] || fail "a list without a token answered $status, not 401"
say "authenticated list: 200 with $count encounters (401 without a token)"

# The metrics of both workers, summed from the tmpfs that stands for the metrics emptyDir.
metrics=$(curl -fsS "$base_url/metrics") || fail "/metrics"
grep -q '^encounters_http_requests_total{' <<<"$metrics" || fail "/metrics has no request counts"
say "/metrics answers from the read-only filesystem's metrics tmpfs"

uid=$(podman exec "$server" id -u)
[[ $uid == 10001 ]] || fail "the server runs as uid $uid, not 10001"
# Every process of the container, gunicorn's master and workers included.
owners=$(podman top "$server" user | tail -n +2 | sort -u | paste -sd' ')
[[ $owners =~ ^(10001|encounters)$ ]] || fail "processes run as: $owners"
say "runs as uid 10001 ($owners)"

podman healthcheck run "$server" >/dev/null || fail "podman healthcheck run"
say "HEALTHCHECK passes"
memory=$(podman stats --no-stream --format '{{.MemUsage}}' "$server" | cut -d/ -f1)
say "memory of the container (2 workers): $memory"

podman stop --time 30 "$server" >/dev/null 2>&1
podman rm "$server" >/dev/null 2>&1
say "passed ($(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
