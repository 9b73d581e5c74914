#!/bin/sh
# A private Docker engine for tests on a machine without one (no registry, no bridge, vfs storage).
#   docker/engine.sh start   -> starts dockerd, prints DOCKER_HOST=unix://.../docker.sock
#   docker/engine.sh stop    -> stops that dockerd by its PID, unmounts what it left, removes the dir
#   docker/engine.sh status  -> prints DOCKER_HOST when it is running, exits 1 otherwise
# Everything lives under $KAZOO_DOCKER_DIR (default: $TMPDIR/kazoo-harness-dockerd).
set -eu

DIR="${KAZOO_DOCKER_DIR:-${TMPDIR:-/tmp}/kazoo-harness-dockerd}"
PIDFILE="$DIR/dockerd.pid"
SOCK="$DIR/docker.sock"
LOG="$DIR/dockerd.log"
READY_TIMEOUT="${KAZOO_DOCKER_READY_TIMEOUT:-30}"

running_pid() {
    [ -s "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

start() {
    if pid=$(running_pid); then
        echo "DOCKER_HOST=unix://$SOCK"
        echo "engine already running (pid $pid)" >&2
        return 0
    fi
    command -v dockerd >/dev/null || { echo "dockerd not found: apt-get install -y docker.io" >&2; exit 2; }
    mkdir -p "$DIR/root" "$DIR/exec"
    : >"$LOG"
    # setsid: the engine outlives this shell; it is stopped by the PID in $PIDFILE only.
    setsid dockerd \
        --storage-driver=vfs --iptables=false --ip-masq=false --bridge=none \
        --data-root "$DIR/root" --exec-root "$DIR/exec" --pidfile "$PIDFILE" \
        -H "unix://$SOCK" >>"$LOG" 2>&1 </dev/null &
    # ready = dockerd logged that its API listens (an event, with a deadline); the follower is
    # stopped by its PID once grep has seen the line or given up
    rm -f "$DIR/ready.fifo" && mkfifo "$DIR/ready.fifo"
    tail -n +1 -F "$LOG" >"$DIR/ready.fifo" 2>/dev/null &
    follower=$!
    ready=0
    timeout "$READY_TIMEOUT" grep -q -m1 'API listen on' <"$DIR/ready.fifo" || ready=$?
    kill "$follower" 2>/dev/null || true
    rm -f "$DIR/ready.fifo"
    if [ "$ready" -ne 0 ]; then
        echo "dockerd not ready within ${READY_TIMEOUT}s; last lines of $LOG:" >&2
        tail -n 20 "$LOG" >&2
        stop >&2
        exit 1
    fi
    echo "DOCKER_HOST=unix://$SOCK"
}

stop() {
    if pid=$(running_pid); then
        kill -TERM "$pid"
        # wait for that PID to exit (dockerd stops its containerd and containers first)
        if ! timeout 30 tail --pid="$pid" -f /dev/null; then
            echo "dockerd (pid $pid) still running after 30s: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    if [ -d "$DIR" ]; then
        # mounts dockerd leaves behind (netns, container shm), deepest first
        findmnt -rn -o TARGET | grep -F "$DIR/" | sort -r | while read -r target; do
            umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
        done
        rm -rf "$DIR"
    fi
    echo "engine stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status)
        if pid=$(running_pid); then echo "DOCKER_HOST=unix://$SOCK"; else echo "not running" >&2; exit 1; fi ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
