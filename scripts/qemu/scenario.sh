#!/bin/sh
# End-to-end scenario of scripts/qemu-test.sh, run unchanged inside the ARM
# guest (busybox ash, from /init) and on the x86 host (dash/bash), so that the
# figures of both are measured the same way:
#   mosquitto (real broker, loopback) ← afb-edge run ← afb-edge simulate
#   + a subscriber checking the topics, a remote command round trip, a clean
#     shutdown (offline status), and optionally a serial ECU link.
# Ends with one line:
#   SCENARIO-RESULT PASS|FAIL label=… key=value… [reasons=…]
#
# Environment (all required unless a default is given):
#   AFB_EDGE        path of bin/afb-edge (node must be in PATH)
#   MOSQUITTO       mosquitto binary; MOSQUITTO_SUB, MOSQUITTO_PUB: the clients
#   WORK            empty writable directory for sockets, logs, the outbox
#   PORT            broker port on 127.0.0.1 (free)
#   LABEL           name in the result line (arm64, x86_64…)
#   DEVICE          device id in the topics (default afb-edge-$LABEL)
#   STEADY_S        seconds after readiness when RSS is read (default 10)
#   CHECK_CONFIG    1 (default): afb-edge check-config the scenario's config first
#   EVENT_TIMEOUT_S how long to wait for the simulator, then for the first event (default 60)
#   ECU_DEVICE      serial device of the ECU link (guest: the PCI UART); unset = no serial part
#   SERIAL_STATE    why there is no serial part when ECU_DEVICE is unset (reported as is)
#   READY_RUNS      later starts whose median is ready_ms: the timed one and READY_RUNS-1 before it (default 3)
set -u
# The agent runs with what a service gets, not the calling shell's Node
# settings: NODE_OPTIONS, and NODE_EXTRA_CA_CERTS (a certificate bundle read
# at every start: ~70 ms on a CI machine that sets it).
unset NODE_OPTIONS NODE_EXTRA_CA_CERTS

: "${AFB_EDGE:?}" "${MOSQUITTO:?}" "${MOSQUITTO_SUB:?}" "${MOSQUITTO_PUB:?}" "${WORK:?}" "${PORT:?}" "${LABEL:?}"
DEVICE=${DEVICE:-afb-edge-$LABEL}
STEADY_S=${STEADY_S:-10}
EVENT_TIMEOUT_S=${EVENT_TIMEOUT_S:-60}
SERIAL_STATE=${SERIAL_STATE:-not-requested}
PREFIX="afb-edge/$DEVICE"

reasons=""
fail() { reasons="$reasons${reasons:+,}$1"; echo "scenario[$LABEL]: FAIL $1: $2" >&2; }
say() { echo "scenario[$LABEL]: $*" >&2; }

# Milliseconds on a monotonic-enough clock. GNU date has %N; busybox date
# prints it literally, so the guest falls back to /proc/uptime (10 ms steps,
# plenty against a 3 s budget), read with shell built-ins only: under
# emulation each process the polling loops start costs CPU the agent is
# being timed on.
if [ "$(date +%N 2>/dev/null)" != "%N" ] && [ -n "$(date +%N 2>/dev/null)" ]; then
  now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
else
  now_ms() { read -r up _ </proc/uptime; _c=${up#*.}; _c=${_c#0}; echo $(( ${up%.*} * 1000 + 10 * _c )); }
fi

# wait_for FILE PATTERN TIMEOUT_S: polls every 20 ms (fine enough for the
# latencies measured here, cheap enough not to steal the guest's CPU).
wait_for() {
  _deadline=$(( $(now_ms) + $3 * 1000 ))
  while ! grep -q -e "$2" "$1" 2>/dev/null; do
    [ "$(now_ms)" -ge "$_deadline" ] && return 1
    sleep 0.02
  done
}

first_event_ms=-1 first_ready_ms=not-run ready_ms=not-logged ready_runs_ms= notify_ms=not-run rss_kb=-1 hwm_kb=-1 anon_kb=-1 file_kb=-1 shmem_kb=-1 speed_n=0 rpm_n=0 ecu_n=0 command=not-run stop_ms=-1
serial=${SERIAL_STATE}
[ -z "${ECU_DEVICE:-}" ] || serial=not-run
# Prints the result line and exits (also early, when the set-up failed: the
# rest would only pile up consequences of the first failure).
finish() {
  if [ -n "$reasons" ]; then
    [ -f "$WORK/agent.log" ] && { say "agent log (tail):"; tail -n 30 "$WORK/agent.log" >&2; }
    verdict=FAIL
  else
    verdict=PASS
  fi
  echo "SCENARIO-RESULT $verdict label=$LABEL node=$(node --version) first_ready_ms=$first_ready_ms ready_ms=$ready_ms ready_runs_ms=${ready_runs_ms:-none} notify_ms=$notify_ms first_event_ms=$first_event_ms rss_kb=$rss_kb hwm_kb=$hwm_kb rss_anon_kb=$anon_kb rss_file_kb=$file_kb rss_shmem_kb=$shmem_kb speed_events=$speed_n rpm_events=$rpm_n ecu_events=$ecu_n command=$command serial=$serial stop_ms=$stop_ms${reasons:+ reasons=$reasons}"
  [ "$verdict" = PASS ]
  exit
}
abort_if_failed() { [ -z "$reasons" ] || finish; }

pids=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap cleanup EXIT

# --- broker -------------------------------------------------------------
cat >"$WORK/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
EOF
# As root mosquitto drops to the user named here; the guest has only root.
[ "$(id -u)" = 0 ] && echo "user root" >>"$WORK/mosquitto.conf"
"$MOSQUITTO" -c "$WORK/mosquitto.conf" 2>"$WORK/mosquitto.log" &
pids="$pids $!"
wait_for "$WORK/mosquitto.log" "Opening ipv4 listen socket on port $PORT" 20 || { fail broker "mosquitto did not start"; cat "$WORK/mosquitto.log" >&2; }

# --- simulated binder (started first: the agent's start-up is what is timed) --
"$AFB_EDGE" simulate --ws-server "unix:$WORK/vehicle" --period 100 2>"$WORK/sim.log" &
pids="$pids $!"
wait_for "$WORK/sim.log" "serving" "$EVENT_TIMEOUT_S" || { fail simulator "afb-edge simulate did not start"; cat "$WORK/sim.log" >&2; }

# --- agent configuration ------------------------------------------------
ecu_route="" ecu_allow="" serial_section=""
if [ -n "${ECU_DEVICE:-}" ]; then
  # The serial link to the ECU that `afb-edge ecu-sim --protocol ndjson`
  # serves on the host side of the emulated port: its events are ecu0/{event}.
  ecu_route='
  - name: ecu
    match: ["ecu0/*"]
    qos: 1'
  ecu_allow='
    - binder: ecu0
      verbs: [ping]'
  serial_section="
serial:
  links:
    - name: ecu0
      device: $ECU_DEVICE
      protocol: ndjson"
fi
cat >"$WORK/agent.yaml" <<EOF
device:
  id: $DEVICE
binders:
  - name: vehicle
    spec: unix:$WORK/vehicle
    subscribe:
      - verb: subscribe   # no args: every event of the simulated binder
mqtt:
  url: mqtt://127.0.0.1:$PORT
routes:
  - name: speed           # QoS 1: through the durable outbox (better-sqlite3)
    match: [vehicle/speed]
    qos: 1
  - name: rpm             # QoS 0: straight to the client
    match: [vehicle/engine_rpm]
    qos: 0$ecu_route
commands:
  enabled: true
  allow:
    - binder: vehicle
      verbs: [ping]$ecu_allow
outbox:
  path: $WORK/outbox.db
logging:
  level: info$serial_section
EOF
# `run` validates the same file and exits 1 on an error (seen below as an
# early exit); check-config first gives the readable list of errors. Skipped
# in the guest, where each Node start costs seconds.
if [ "${CHECK_CONFIG:-1}" = 1 ]; then
  "$AFB_EDGE" check-config "$WORK/agent.yaml" >"$WORK/check.log" 2>&1 || { fail config "check-config rejected the scenario's config"; cat "$WORK/check.log" >&2; }
fi
abort_if_failed

# --- systemd's side of Type=notify -------------------------------------------
# A datagram socket that records what the agent sends (READY=1, STATUS=…),
# so that readiness is also timed from outside, as systemd sees it.
notify=""
if command -v socat >/dev/null 2>&1; then
  socat -u "UNIX-RECV:$WORK/notify.sock" "OPEN:$WORK/notify.log,creat,append" 2>"$WORK/notify.err" &
  pids="$pids $!"
  n=0; while [ ! -S "$WORK/notify.sock" ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
  [ -S "$WORK/notify.sock" ] && notify=$WORK/notify.sock
fi
notify_ms=${notify:+-1}
notify_ms=${notify_ms:-no-listener}

# --- first start after install: fills the V8 code cache --------------------
# dist/src/cli/launch.cjs keeps the bundle's compiled code in
# AFB_EDGE_CODE_CACHE (the unit's CacheDirectory= on a board), written once
# the first start is ready. The timed start below is every later start; this one's
# own figure is first_ready_ms. The same config file, as on a board (the
# agent also keeps the file's parsed data there, src/config/parse-cache.ts):
# its outbox is removed afterwards, and the subscriber starts after it, so
# that nothing it published is counted.
export AFB_EDGE_CODE_CACHE="$WORK/code-cache"
mkdir -p "$AFB_EDGE_CODE_CACHE"
# logged_ready LOG: the agent's own figure, logged with READY=1 (process uptime at readiness).
logged_ready() { sed -n 's/.*ready in \([0-9][0-9]*\) *ms.*/\1/p' "$1" | head -n 1; }
# ready_once LOG: starts the agent, waits for its "ready in N ms", stops it;
# prints N (empty on failure: the caller reports it). An exit status other
# than 0 after SIGTERM is appended to LOG as "exit N".
ready_once() {
  "$AFB_EDGE" run --config "$WORK/agent.yaml" >/dev/null 2>"$1" &
  once=$!
  wait_for "$1" "ready in" "$EVENT_TIMEOUT_S" && logged_ready "$1"
  kill -TERM "$once" 2>/dev/null
  wait "$once" || echo "exit $?" >>"$1"
  rm -f "$WORK/outbox.db" "$WORK/outbox.db-wal" "$WORK/outbox.db-shm"
}
# check_start LOG FIGURE WHAT: the checks every stopped start passes.
check_start() {
  [ -n "$2" ] || fail "$3" "$3 did not become ready: $(tail -n 5 "$1")"
  grep -q "^exit " "$1" && fail "$3" "$3: $(grep "^exit " "$1") after SIGTERM"
  grep -q "launch:" "$1" && fail code-cache "launcher warning: $(grep "launch:" "$1" | head -n 1)"
}
first_ready_ms=$(ready_once "$WORK/agent-first.log")
check_start "$WORK/agent-first.log" "$first_ready_ms" first-start
ls "$AFB_EDGE_CODE_CACHE"/*.v8cache >/dev/null 2>&1 || fail code-cache "the first start wrote no code cache in $AFB_EDGE_CODE_CACHE"
ls "$AFB_EDGE_CODE_CACHE"/afb-edge-parsed-config.json >/dev/null 2>&1 || fail parse-cache "the first start wrote no parse cache in $AFB_EDGE_CODE_CACHE"
abort_if_failed

# --- later starts, readiness only ------------------------------------------
# READY_RUNS - 1 starts that only become ready and stop: with the timed start
# below, ready_ms is the median of READY_RUNS later starts, steadier than one
# under emulation on a shared host. Their outboxes are removed as well.
ready_runs=""
i=1
while [ "$i" -lt "${READY_RUNS:-3}" ]; do
  r=$(ready_once "$WORK/agent-ready-$i.log")
  check_start "$WORK/agent-ready-$i.log" "$r" later-start
  ready_runs="$ready_runs $r"
  i=$((i + 1))
done
abort_if_failed

# --- subscriber ---------------------------------------------------------
# -v: "topic payload" per line; everything under the device's prefix.
"$MOSQUITTO_SUB" -h 127.0.0.1 -p "$PORT" -i scenario-sub -v -t "$PREFIX/#" >"$WORK/sub.log" 2>"$WORK/sub.err" &
pids="$pids $!"
wait_for "$WORK/mosquitto.log" "as scenario-sub" 20 || fail subscriber "mosquitto_sub did not connect"

# --- the agent, timed ----------------------------------------------------
# One polling loop for both marks, so neither is recorded late because the
# loop was waiting for the other; it stops early if the agent dies.
t_spawn=$(now_ms)
NOTIFY_SOCKET=$notify "$AFB_EDGE" run --config "$WORK/agent.yaml" 2>"$WORK/agent.log" &
agent=$!
pids="$pids $agent"
deadline=$(( t_spawn + EVENT_TIMEOUT_S * 1000 ))
while :; do
  now=$(now_ms)
  if [ "$first_event_ms" = -1 ] && grep -q "^$PREFIX/events/vehicle/speed " "$WORK/sub.log"; then first_event_ms=$(( now - t_spawn )); fi
  if [ "$notify_ms" = -1 ] && grep -q "READY=1" "$WORK/notify.log" 2>/dev/null; then notify_ms=$(( now - t_spawn )); fi
  [ "$first_event_ms" != -1 ] && [ "$notify_ms" != -1 ] && break
  if ! kill -0 "$agent" 2>/dev/null; then fail agent-exit "afb-edge run exited during start-up"; break; fi
  if [ "$now" -ge "$deadline" ]; then
    [ "$first_event_ms" = -1 ] && fail first-event "no event on $PREFIX/events/vehicle/speed within ${EVENT_TIMEOUT_S}s"
    [ "$notify_ms" = -1 ] && fail notify "no READY=1 on NOTIFY_SOCKET within ${EVENT_TIMEOUT_S}s"
    break
  fi
  sleep 0.05 # each round starts two greps: polled any faster, they compete with the agent for the CPU
done
t_ready=$(now_ms)
r=$(logged_ready "$WORK/agent.log")
if [ -n "$r" ]; then
  ready_runs="$ready_runs $r"
  n=$(echo $ready_runs | wc -w)
  ready_ms=$(printf '%s\n' $ready_runs | sort -n | sed -n "$(( (n + 1) / 2 ))p")
fi
ready_runs_ms=$(echo $ready_runs | tr ' ' '/')
abort_if_failed
grep -q "launch:" "$WORK/agent.log" && fail code-cache "launcher warning: $(grep "launch:" "$WORK/agent.log" | head -n 1)"
say "agent pid $agent: ready ${r:-?} ms (own log; median of the later starts ${ready_ms} ms, of ${ready_runs_ms:-none}; first start ${first_ready_ms} ms), READY=1 received after ${notify_ms} ms, first event after ${first_event_ms} ms"

# --- remote commands: MQTT 5 request/response through the agent -------------
# mqtt_call TARGET VERB JSON OUT: a request on {prefix}/{device}/call/TARGET/VERB
# with a response topic; the reply (one message) lands in OUT.
mqtt_call() {
  "$MOSQUITTO_SUB" -h 127.0.0.1 -p "$PORT" -V mqttv5 -i "scenario-reply-$1" -C 1 -W 60 -t "scenario/reply/$1" >"$4" 2>&1 &
  _sub=$!
  wait_for "$WORK/mosquitto.log" "as scenario-reply-$1" 20 || echo "reply subscriber did not connect" >>"$4"
  "$MOSQUITTO_PUB" -h 127.0.0.1 -p "$PORT" -V mqttv5 -i "scenario-pub-$1" -q 1 -t "$PREFIX/call/$1/$2" \
    -D publish response-topic "scenario/reply/$1" -D publish correlation-data "c-$1" -m "$3" 2>>"$4" \
    || echo "mosquitto_pub failed" >>"$4"
  wait "$_sub" 2>/dev/null
}
# The simulated binder (wsapi): ping echoes its args.
mqtt_call vehicle ping '{"from":"scenario"}' "$WORK/reply.log"
if grep -q '"error":null' "$WORK/reply.log" && grep -q '"pong":{"from":"scenario"}' "$WORK/reply.log"; then command=ok; else
  command=fail; fail command "no ping reply from the binder: $(head -c 300 "$WORK/reply.log")"; fi

# --- serial ECU ----------------------------------------------------------
# Its periodic events reach the broker, and a request goes MQTT → agent → UART
# → ecu-sim and its reply all the way back.
if [ -n "${ECU_DEVICE:-}" ]; then
  serial=ok
  wait_for "$WORK/sub.log" "^$PREFIX/events/ecu0/" 30 || { serial=fail; fail serial-events "no ecu0/* event from the ECU on $ECU_DEVICE"; }
  mqtt_call ecu0 ping '{}' "$WORK/ecu-reply.log"
  if grep -q '"error":null' "$WORK/ecu-reply.log" && grep -q '"data":"pong"' "$WORK/ecu-reply.log"; then :; else
    serial=fail; fail serial-request "no ping reply from the ECU: $(head -c 300 "$WORK/ecu-reply.log")"; fi
fi

# --- steady state ----------------------------------------------------------
# STEADY_S after readiness (not after the spawn: under emulation the start-up
# alone can take longer than that).
while [ $(( $(now_ms) - t_ready )) -lt $(( STEADY_S * 1000 )) ]; do sleep 0.2; done
rss_kb=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$agent/status" 2>/dev/null)
hwm_kb=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$agent/status" 2>/dev/null)
# Split of RSS: anonymous (heaps) vs mapped files (mostly node's own text,
# shared between processes; in the guest those files are in the initramfs, a
# tmpfs, so they count as shmem there and as file on the host).
anon_kb=$(sed -n 's/^RssAnon:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$agent/status" 2>/dev/null)
file_kb=$(sed -n 's/^RssFile:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$agent/status" 2>/dev/null)
shmem_kb=$(sed -n 's/^RssShmem:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$agent/status" 2>/dev/null)
[ -n "$rss_kb" ] || { fail rss "agent gone before the steady-state reading"; rss_kb=-1 hwm_kb=-1 anon_kb=-1 file_kb=-1 shmem_kb=-1; }

speed_n=$(grep -c "^$PREFIX/events/vehicle/speed " "$WORK/sub.log")
ecu_n=$(grep -c "^$PREFIX/events/ecu0/" "$WORK/sub.log")
rpm_n=$(grep -c "^$PREFIX/events/vehicle/engine_rpm " "$WORK/sub.log")
[ "$rpm_n" -gt 0 ] || fail qos0 "no vehicle/engine_rpm event (QoS 0 route)"
grep -q "^$PREFIX/status .*\"state\":\"online\"" "$WORK/sub.log" || fail status "no retained online status"
# Envelope payload: the QoS 1 route's messages carry the event name and data.
grep "^$PREFIX/events/vehicle/speed " "$WORK/sub.log" | head -n 1 | grep -q '"event":"vehicle/speed"' || fail payload "speed payload is not the envelope"

# --- clean shutdown --------------------------------------------------------
t_stop=$(now_ms)
kill -TERM "$agent"
wait "$agent"; agent_rc=$?
stop_ms=$(( $(now_ms) - t_stop ))
[ "$agent_rc" = 0 ] || fail shutdown "afb-edge run exited $agent_rc after SIGTERM"
wait_for "$WORK/sub.log" "^$PREFIX/status .*\"state\":\"offline\"" 10 || fail shutdown "no offline status after SIGTERM"

finish
