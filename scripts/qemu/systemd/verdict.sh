#!/bin/sh
# The checks of the systemd variant of the test guest (qemu-verdict.service),
# run by systemd as root once the broker is up. Every figure comes from
# systemd's own view of the unit (systemctl show), as on a board:
#   - afb-edge.service reaches "active" (Type=notify: READY=1 was received)
#     with a STATUS= line, as its transient user (DynamicUser=yes);
#   - events reach the broker through it;
#   - restarts: the first start wrote its start-up caches (V8 code cache,
#     parsed config) in the unit's CacheDirectory, later starts take them (no
#     launcher warning in the journal); ready_ms is the median of three
#     restarts (ready_runs_ms), first_ready_ms the first start, each from
#     ExecMainStartTimestampMonotonic to ActiveEnterTimestampMonotonic;
#   - RSS of the main process 10 s after READY;
#   - systemctl stop: exit status 0, result "success".
# Prints one line on the console, QEMU-VERDICT PASS|FAIL …, and powers off.
PATH=/usr/bin:/bin:/usr/sbin:/sbin
reasons=""
fail() { reasons="$reasons${reasons:+,}$1"; echo "verdict: FAIL $1: $2"; }
prop() { systemctl show -p "$2" --value "$1"; }
first_ready_ms=-1 ready_ms=-1 ready_runs_ms=none agent_ready_ms=-1 rss_kb=-1 anon_kb=-1 events=0 status_text="" user=""

# `systemctl $3 afb-edge.service` (start: joins the start job the boot queued;
# restart), which for Type=notify returns once READY=1 was received: no
# polling loop, whose systemctl calls would compete with the agent for the CPU
# while it is being timed. Then the unit must be active.
wait_active() {
  timeout "$1" systemctl "$3" afb-edge.service || true
  if [ "$(prop afb-edge.service ActiveState)" != active ]; then
    fail "$2" "afb-edge.service is $(prop afb-edge.service ActiveState)/$(prop afb-edge.service SubState) after systemctl $3 (limit $1 s)"
    journalctl -u afb-edge.service --no-pager -n 30
    return 1
  fi
}
ready_time_ms() {
  s=$(prop afb-edge.service ExecMainStartTimestampMonotonic)
  a=$(prop afb-edge.service ActiveEnterTimestampMonotonic)
  echo $(( (a - s) / 1000 ))
}
finish() {
  v=PASS
  [ -z "$reasons" ] || v=FAIL
  echo "QEMU-VERDICT $v arch=$(uname -m) mode=systemd systemd=$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p') node=$(node --version) first_ready_ms=$first_ready_ms ready_ms=$ready_ms ready_runs_ms=$ready_runs_ms agent_ready_ms=${agent_ready_ms:--1} rss_kb=$rss_kb rss_anon_kb=$anon_kb events=$events user=$user${reasons:+ reasons=$reasons}"
  sync
  poweroff -f
}

if wait_active 180 first-start start; then
  first_ready_ms=$(ready_time_ms)
  status_text=$(prop afb-edge.service StatusText)
  [ -n "$status_text" ] || fail status "no STATUS= text"
  pid=$(prop afb-edge.service MainPID)
  user=$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/status")
  [ "$user" != 0 ] || fail user "the agent runs as root (DynamicUser=yes expected)"
  # Events through the agent: the simulated binder emits every 100 ms.
  events=$(mosquitto_sub -h 127.0.0.1 -p 1883 -t 'afb-edge/afb-edge-systemd/events/#' -C 5 -W 60 | wc -l)
  [ "$events" = 5 ] || fail events "$events of 5 events within 60 s"

  # The first start wrote the start-up caches: restarts take them. Three, and their medians:
  # one start under emulation on a shared host varies by a quarter.
  runs="" agent_runs="" n=0
  while [ $n -lt 3 ] && wait_active 120 later-start restart; do
    runs="$runs $(ready_time_ms)"
    # The agent's own figure for that start (process uptime at READY=1, as it logs it):
    # the difference with ready_ms is systemd's set-up of the sandbox and the launcher's exec.
    agent_runs="$agent_runs $(journalctl -u afb-edge.service --no-pager -o cat | sed -n 's/.*ready in \([0-9][0-9]*\) ms.*/\1/p' | tail -n 1)"
    n=$((n + 1))
  done
  median() { printf '%s\n' $1 | sort -n | sed -n "$(( ($(echo $1 | wc -w) + 1) / 2 ))p"; }
  if [ $n = 3 ]; then
    ready_ms=$(median "$runs") agent_ready_ms=$(median "$agent_runs") ready_runs_ms=$(echo $runs | tr ' ' '/')
    ls /var/cache/private/afb-edge/afb-edge-*.v8cache >/dev/null 2>&1 || fail code-cache "no code cache in the unit's CacheDirectory (/var/cache/private/afb-edge)"
    [ -f /var/cache/private/afb-edge/afb-edge-parsed-config.json ] || fail parse-cache "no parse cache in the unit's CacheDirectory (/var/cache/private/afb-edge)"
    journalctl -u afb-edge.service --no-pager | grep -q "parse cache" && fail parse-cache "$(journalctl -u afb-edge.service --no-pager | grep "parse cache" | head -n 1)"
    journalctl -u afb-edge.service --no-pager | grep -q "launch:" && fail code-cache "launcher warning: $(journalctl -u afb-edge.service --no-pager | grep "launch:" | head -n 1)"
    sleep 10
    pid=$(prop afb-edge.service MainPID)
    rss_kb=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
    anon_kb=$(sed -n 's/^RssAnon:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
  fi
  systemctl stop afb-edge.service
  [ "$(prop afb-edge.service Result)" = success ] || fail stop "Result=$(prop afb-edge.service Result) after systemctl stop"
  [ "$(prop afb-edge.service ExecMainStatus)" = 0 ] || fail stop "exit status $(prop afb-edge.service ExecMainStatus) after systemctl stop"
fi
echo "verdict: STATUS=$status_text"
finish
