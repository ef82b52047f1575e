# Shared helpers for scripts that need a throw-away etcd on loopback.
# Source it, then: ensure_etcd; start_etcd WORKDIR; ctl ...; (stop_etcd runs on EXIT).
# Sets ETCD_ENDPOINT and ETCD_PID. Every port is set explicitly (never 2379/2380).
# ATREST_ETCD_ARGS adds flags to etcd (word-split; etcd itself reads ETCD_* variables).
# ATREST_ETCD_BIN and ATREST_ETCDCTL_BIN choose the binaries (default: etcd and
# etcdctl on PATH, installed from Debian's etcd-server/etcd-client when missing).

ETCD_BIN="${ATREST_ETCD_BIN:-etcd}"
ETCDCTL_BIN="${ATREST_ETCDCTL_BIN:-etcdctl}"

ensure_etcd() {
    if [ -n "${ATREST_ETCD_BIN:-}${ATREST_ETCDCTL_BIN:-}" ]; then
        # Chosen binaries are used as they are, never replaced by installed ones.
        local b
        for b in "$ETCD_BIN" "$ETCDCTL_BIN"; do
            if ! command -v "$b" >/dev/null; then
                echo "$b is not an executable (check ATREST_ETCD_BIN / ATREST_ETCDCTL_BIN)" >&2
                return 1
            fi
        done
    elif ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends etcd-server etcd-client >/dev/null
    fi
    export ETCDCTL_API=3
}

# Free when nothing accepts a connection on it (bash's /dev/tcp: no extra tools).
_port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

_pick_ports() {
    local base
    for _ in $(seq 1 100); do
        base=$((24000 + (RANDOM % 1500) * 3))
        if _port_free "$base" && _port_free $((base + 1)) && _port_free $((base + 2)); then
            echo "$base"
            return 0
        fi
    done
    echo "no free loopback ports found" >&2
    return 1
}

stop_etcd() {
    if [ -n "${ETCD_PID:-}" ] && kill -0 "$ETCD_PID" 2>/dev/null; then
        kill "$ETCD_PID"
        wait "$ETCD_PID" 2>/dev/null || true
    fi
    ETCD_PID=""
}

start_etcd() {
    local work="$1" base client peer metrics
    base="$(_pick_ports)"
    client="http://127.0.0.1:$base"
    peer="http://127.0.0.1:$((base + 1))"
    metrics="http://127.0.0.1:$((base + 2))"
    "$ETCD_BIN" --name sample --data-dir "$work/data" \
        --listen-client-urls "$client" --advertise-client-urls "$client" \
        --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "sample=$peer" --listen-metrics-urls "$metrics" \
        --logger=zap --log-outputs="$work/etcd.log" ${ATREST_ETCD_ARGS:-} &
    ETCD_PID=$!
    ETCD_ENDPOINT="$client"
    export ETCD_ENDPOINT
    for _ in $(seq 1 400); do
        if "$ETCDCTL_BIN" --endpoints="$client" endpoint health >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$ETCD_PID" 2>/dev/null; then
            cat "$work/etcd.log" >&2
            echo "etcd exited during start-up" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "etcd did not become healthy" >&2
    return 1
}

ctl() { "$ETCDCTL_BIN" --endpoints="$ETCD_ENDPOINT" "$@"; }
