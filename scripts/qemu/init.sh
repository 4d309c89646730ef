#!/bin/busybox sh
# PID 1 of the test guest (scripts/qemu-test.sh puts it in the initramfs as
# /init). No distribution, no service manager: mount the API filesystems,
# find the ECU's UART, run the scenario, print one verdict line on the
# console and power off. Whatever happens, the last thing is `poweroff -f`:
# the host waits for the verdict line or its timeout, never for a prompt.
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /root /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
read -r boot_s _ </proc/uptime

# Parameters written by the host: LABEL, STEADY_S, EVENT_TIMEOUT_S.
. /etc/qemu-test.env

verdict() { # $1 PASS|FAIL, rest: figures
  echo "QEMU-VERDICT $*"
  sync
  poweroff -f
  sleep 10 # poweroff -f does not return; this only keeps PID 1 alive meanwhile
}

# The broker and the agent talk over loopback, which has its address once up.
ip link set lo up || verdict FAIL "arch=$LABEL reason=loopback"

# The ECU's UART: QEMU's pci-serial (a 16550A on the virt machine's PCIe
# bus, vendor 1b36 device 0002), driven by 8250_pci, built into Debian's
# kernel. Found by its PCI ids rather than assumed to be ttyS0.
ecu_dev=""
for t in /sys/class/tty/ttyS*; do
  [ "$(cat "$t/device/vendor" 2>/dev/null):$(cat "$t/device/device" 2>/dev/null)" = "0x1b36:0x0002" ] && ecu_dev=/dev/${t##*/} && break
done
echo "init: booted in ${boot_s}s, $(nproc) CPUs, $(sed -n 's/MemTotal: *//p' /proc/meminfo) RAM, ECU UART ${ecu_dev:-missing}"
[ -n "$ecu_dev" ] || verdict FAIL "arch=$LABEL boot_s=$boot_s reason=no-ecu-uart"
# A UART comes up in cooked mode with ECHO on: whatever the ECU sends between
# the agent's open() and its raw termios would be echoed back to the ECU, and
# a partial echoed line glues onto the agent's first request there. A board
# image sets its ECU UARTs raw at boot (termios persists across opens); so
# does this one, and only then tells the host (the line below) to start the
# ECU, so that nothing is waiting in the UART when it is configured.
stty -F "$ecu_dev" raw -echo || verdict FAIL "arch=$LABEL boot_s=$boot_s reason=stty"
echo "init: ECU UART $ecu_dev configured (raw, no echo)"
export ECU_DEVICE="$ecu_dev"
mkdir -p /tmp/scenario
# CHECK_CONFIG=0: `run` validates the config itself, and a Node start costs seconds here.
result=$(AFB_EDGE=/opt/afb-edge/bin/afb-edge MOSQUITTO=/usr/sbin/mosquitto MOSQUITTO_SUB=/usr/bin/mosquitto_sub \
  MOSQUITTO_PUB=/usr/bin/mosquitto_pub WORK=/tmp/scenario PORT=1883 LABEL="$LABEL" STEADY_S="$STEADY_S" \
  EVENT_TIMEOUT_S="$EVENT_TIMEOUT_S" CHECK_CONFIG=0 sh /scenario.sh | grep '^SCENARIO-RESULT ')

# After the scenario (so that nothing else runs while it is timed): the three
# native addons, cross-compiled with foreign prebuilds deleted, load on this
# CPU — the scenario may not exercise all of them.
addons=ok
cd /opt/afb-edge && node -e '
  const sq = require("better-sqlite3");
  new sq(":memory:").prepare("select 1").get();
  require("./build/Release/afb_edge_unix.node");
  require("@serialport/bindings-cpp").autoDetect();
  console.log("init: addons load on", process.arch + ":", "better-sqlite3, afb_edge_unix, @serialport/bindings-cpp");
' || addons=fail

# "SCENARIO-RESULT PASS label=… figures…" → "QEMU-VERDICT PASS arch=… boot_s=… figures…"
# shellcheck disable=SC2086 # split on purpose: one word per field
set -- $result
[ "$1" = SCENARIO-RESULT ] || verdict FAIL "arch=$LABEL boot_s=$boot_s addons=$addons reason=no-scenario-result"
shift
status=$1; shift
[ "$addons" = ok ] || status=FAIL
verdict "$status" "arch=$LABEL boot_s=$boot_s addons=$addons $*"
