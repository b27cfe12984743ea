#!/usr/bin/env bash
# One `orcd serve` per GPU (or N CPU workers) on local ports, with HAProxy in front (deploy/haproxy/orcd-fleet.cfg.in).
#
#   scripts/serve-fleet.sh -m MODEL [--gpus all|0,1,...] [--device cpu --workers N] [--port 8080] [--bind 127.0.0.1]
#                          [--base-port 18100] [--state DIR] [-- ARGS FOR EVERY orcd serve]
#       starts the fleet in the foreground; SIGINT/SIGTERM stop it (workers drain: running requests finish).
#   scripts/serve-fleet.sh restart --state DIR [--worker I]
#       rolling restart of worker I, or of every worker one at a time: drain it in HAProxy, wait for its requests,
#       take it out, stop it (SIGTERM), start it again, wait for /health, put it back.
#   scripts/serve-fleet.sh status --state DIR
#       each worker's state as HAProxy sees it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ORCD=${ORCD:-$here/build/src/cli/orcd}

die() { echo "serve-fleet: $*" >&2; exit 1; }
say() { echo "serve-fleet: $*" >&2; }

# Sends one command to HAProxy's runtime API and prints the answer.
haproxy_cmd() {
  python3 - "$1/haproxy.sock" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode())
PY
}

# Waits (bounded) until a worker's /health answers 200.
wait_healthy() {
  local port=$1 pid=$2 seconds=${3:-600}
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ] && return 0
    sleep 0.2
  done
  return 1
}

# Starts worker I from the state directory's recorded command line; records its pid.
start_worker() {
  local state=$1 i=$2
  local cmd
  eval "cmd=($(cat "$state/worker$i.cmd"))"
  "${cmd[@]}" >>"$state/worker$i.log" 2>&1 &
  echo $! > "$state/worker$i.pid"
}

stop_worker() {
  local state=$1 i=$2 pid
  pid=$(cat "$state/worker$i.pid" 2>/dev/null) || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  say "worker $i (pid $pid) did not stop within 30 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

cmd_restart() {
  local state="" only=""
  while (($#)); do
    case $1 in --state) state=$2; shift 2 ;; --worker) only=$2; shift 2 ;; *) die "restart: unknown argument $1" ;; esac
  done
  [ -d "$state" ] || die "restart: --state DIR of a running fleet is required"
  state=$(cd "$state" && pwd)
  local n; n=$(cat "$state/workers")
  local list; if [ -n "$only" ]; then list=$only; else list=$(seq 0 $((n - 1))); fi
  for i in $list; do
    [ -f "$state/worker$i.cmd" ] || die "restart: no worker $i in $state"
    local port; port=$(cat "$state/worker$i.port")
    say "worker $i: draining"
    haproxy_cmd "$state" "set server workers/w$i state drain" >/dev/null
    # Wait for the requests it is serving to finish (bounded: a long answer may take minutes).
    local deadline=$((SECONDS + 600))
    while ((SECONDS < deadline)); do
      local cur; cur=$(haproxy_cmd "$state" "show stat" | awk -F, -v s="w$i" '$1=="workers" && $2==s {print $5}')
      [ "${cur:-0}" = 0 ] && break
      sleep 0.2
    done
    haproxy_cmd "$state" "set server workers/w$i state maint" >/dev/null
    say "worker $i: stopping"
    stop_worker "$state" "$i"
    say "worker $i: starting"
    start_worker "$state" "$i"
    wait_healthy "$port" "$(cat "$state/worker$i.pid")" || die "worker $i did not become healthy; see $state/worker$i.log"
    haproxy_cmd "$state" "set server workers/w$i state ready" >/dev/null
    # Let HAProxy's own check see it up before the next worker goes.
    for _ in $(seq 1 50); do
      haproxy_cmd "$state" "show stat" | awk -F, -v s="w$i" '$1=="workers" && $2==s {print $18}' | grep -q '^UP' && break
      sleep 0.1
    done
    say "worker $i: back in rotation"
  done
}

cmd_status() {
  local state=""
  while (($#)); do case $1 in --state) state=$2; shift 2 ;; *) die "status: unknown argument $1" ;; esac; done
  [ -d "$state" ] || die "status: --state DIR of a running fleet is required"
  state=$(cd "$state" && pwd)
  haproxy_cmd "$state" "show stat" | awk -F, '$1=="workers" && $2!="BACKEND" {printf "%s %s current=%s total=%s\n", $2, $18, $5, $8}'
}

cmd_start() {
  local model="" gpus="all" device="cuda" workers="" port=8080 bind=127.0.0.1 base=18100 state=""
  local extra=()
  while (($#)); do
    case $1 in
      -m|--model) model=$2; shift 2 ;;
      --gpus) gpus=$2; shift 2 ;;
      --device) device=$2; shift 2 ;;
      --workers) workers=$2; shift 2 ;;
      --port) port=$2; shift 2 ;;
      --bind) bind=$2; shift 2 ;;
      --base-port) base=$2; shift 2 ;;
      --state) state=$2; shift 2 ;;
      --) shift; extra=("$@"); break ;;
      *) die "unknown argument $1 (see the usage at the top of $0)" ;;
    esac
  done
  [ -n "$model" ] || die "-m MODEL is required"
  [ -r "$model" ] || die "cannot read the model $model"
  command -v haproxy >/dev/null || die "haproxy is not installed (Debian package haproxy; scripts/setup.sh installs it)"
  [ -x "$ORCD" ] || die "no orcd binary at $ORCD (build first, or set ORCD)"
  local ids=()
  if [ "$device" = cpu ]; then
    [ -n "$workers" ] || die "--device cpu needs --workers N"
    for ((i = 0; i < workers; i++)); do ids+=("$i"); done
  else
    [ -z "$workers" ] || die "--workers is for --device cpu; on GPUs there is one worker per GPU (--gpus)"
    if [ "$gpus" = all ]; then
      local count; count=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | wc -l) || count=0
      ((count > 0)) || die "no NVIDIA GPU found (nvidia-smi); use --device cpu --workers N without GPUs"
      for ((i = 0; i < count; i++)); do ids+=("$i"); done
    else
      IFS=, read -r -a ids <<< "$gpus"
    fi
  fi
  state=${state:-$(mktemp -d "/tmp/orcd-fleet-$port.XXXXXX")}
  mkdir -p "$state/errors"
  state=$(cd "$state" && pwd)  # HAProxy's config names files in it: an absolute path
  echo "${#ids[@]}" > "$state/workers"
  local servers=""
  for i in "${!ids[@]}"; do
    local wport=$((base + i))
    local cmd=("$ORCD" serve -m "$model" --host 127.0.0.1 --port "$wport" --device "$device")
    [ "$device" = cpu ] || cmd+=(--gpu "${ids[$i]}")
    cmd+=("${extra[@]}")
    printf '%q ' "${cmd[@]}" > "$state/worker$i.cmd"  # shell-quoted: read back with eval
    echo "$wport" > "$state/worker$i.port"
    servers+="    server w$i 127.0.0.1:$wport check"$'\n'
  done
  # HAProxy's own error answers, in the OpenAI error shape.
  for code in 502 503 504; do
    local reason msg
    case $code in
      502) reason="Bad Gateway"; msg="the worker serving this request stopped before it finished; the request was not retried because it had started" ;;
      503) reason="Service Unavailable"; msg="no worker is ready to take the request (all are loading, draining or down); retry later" ;;
      504) reason="Gateway Timeout"; msg="the worker did not answer in time" ;;
    esac
    local body="{\"error\":{\"message\":\"$msg\",\"type\":\"server_error\",\"param\":null,\"code\":\"fleet_$code\"}}"
    printf 'HTTP/1.1 %s %s\r\nContent-Type: application/json\r\nCache-Control: no-cache\r\nConnection: close\r\nContent-Length: %s\r\n\r\n%s' \
      "$code" "$reason" "${#body}" "$body" > "$state/errors/$code.http"
  done
  sed -e "s|@STATE_DIR@|$state|g" -e "s|@BIND@|$bind|g" -e "s|@PORT@|$port|g" \
      "$here/deploy/haproxy/orcd-fleet.cfg.in" | awk -v s="$servers" '{ if ($0 == "@SERVERS@") printf "%s", s; else print }' \
      > "$state/haproxy.cfg"
  haproxy -c -q -f "$state/haproxy.cfg" || die "the generated HAProxy config is invalid: $state/haproxy.cfg"

  local hapid=""
  stop_all() {
    trap - INT TERM
    say "stopping: workers drain (running requests finish), then HAProxy"
    for i in "${!ids[@]}"; do kill -TERM "$(cat "$state/worker$i.pid")" 2>/dev/null || true; done
    for i in "${!ids[@]}"; do stop_worker "$state" "$i"; done
    [ -n "$hapid" ] && kill -TERM "$hapid" 2>/dev/null && wait "$hapid" 2>/dev/null
    say "stopped"
    exit 0
  }
  trap stop_all INT TERM
  for i in "${!ids[@]}"; do start_worker "$state" "$i"; done
  for i in "${!ids[@]}"; do
    wait_healthy "$(cat "$state/worker$i.port")" "$(cat "$state/worker$i.pid")" ||
      { say "worker $i did not become healthy; its log:"; tail -n 20 "$state/worker$i.log" >&2; stop_all; }
  done
  haproxy -db -f "$state/haproxy.cfg" >>"$state/haproxy.log" 2>&1 &
  hapid=$!
  echo "$hapid" > "$state/haproxy.pid"
  for _ in $(seq 1 100); do [ -S "$state/haproxy.sock" ] && break; sleep 0.05; done
  say "ready: ${#ids[@]} workers behind http://$bind:$port (state $state)"
  echo "ready url=http://$bind:$port state=$state workers=${#ids[@]}"
  # Stay in the foreground until told to stop; a dead HAProxy ends the fleet.
  while kill -0 "$hapid" 2>/dev/null; do sleep 1 & wait $! || true; done
  say "HAProxy exited; stopping the workers"
  stop_all
}

case ${1:-} in
  restart) shift; cmd_restart "$@" ;;
  status) shift; cmd_status "$@" ;;
  start) shift; cmd_start "$@" ;;
  *) cmd_start "$@" ;;
esac
