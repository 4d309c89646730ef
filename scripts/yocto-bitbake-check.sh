#!/bin/bash
# The release check of the Yocto layer (yocto/meta-afb-edge) under real
# bitbake: what scripts/check-yocto.sh (CI, no bitbake) cannot prove.
#
#   scripts/yocto-bitbake-check.sh [options] POKY_DIR META_OE_DIR
#
# POKY_DIR     a poky checkout (scarthgap), or an openembedded-core checkout
#              with bitbake cloned into it as bitbake/ (wrynose and later:
#              poky has no branch for them)
# META_OE_DIR  a meta-openembedded checkout of the same series
#
# Options:
#   --offline          for a build host without internet (this one reaches only
#                      the npm registry): CONNECTIVITY_CHECK_URIS = "" (sanity.bbclass
#                      would fetch example.com) and INHERIT:remove = "uninative"
#                      (poky downloads its uninative tarball). Not needed otherwise.
#   --build-dir DIR    use DIR as build directory and keep it (default: a new
#                      temporary one, removed at the end)
#   --dl-dir DIR       DL_DIR shared between runs (the npm tarballs, the git mirror)
#   --machine NAME     MACHINE (default qemuarm64)
#   --user NAME        the user to run bitbake as when started as root (bitbake
#                      refuses root); created if missing (default afb-edge-check)
#
# Steps, one verdict line each (PASS/FAIL), the exit status is 1 if any failed:
#   setup, bitbake-layers add-layer + show-layers,
#   bitbake -p with AFB_EDGE_GIT_URL unset, and the skip messages then,
#   bitbake -p / -e afb-edge (the key variables) / -e packagegroup-afb-edge,
#   the skip without the systemd distro feature,
#   bitbake -n afb-edge and packagegroup-afb-edge,
#   bitbake afb-edge -c fetch and -c unpack (sources: a local clone of this
#   repository at HEAD through AFB_EDGE_GIT_URL; dependencies: the npm registry),
#   yocto-check-layer on the layer with meta-oe as dependency (AFB_EDGE_GIT_URL unset).
# Each step's output is in the build directory, logs/STEP.log.
#
# The layer is taken from this working tree; the sources bitbake fetches are
# the commit at HEAD (commit first). Host packages: see the layer's section
# "Release check". Runs for 30 to 60 minutes on 2 cores, most of it parsing.
set -u

usage() { sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

offline=0 build_dir="" keep=0 dl_dir="" machine=qemuarm64 user=afb-edge-check
args=("$@")
while [ $# -gt 0 ]; do
    case "$1" in
        --offline) offline=1 ;;
        --build-dir) build_dir=$2; keep=1; shift ;;
        --dl-dir) dl_dir=$2; shift ;;
        --machine) machine=$2; shift ;;
        --user) user=$2; shift ;;
        -h|--help) usage ;;
        -*) echo "yocto-bitbake-check: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
    shift
done
[ $# -eq 2 ] || usage
poky=$(realpath "$1") meta_oe=$(realpath "$2")
root=$(realpath "$(dirname "$0")/..")
layer="$root/yocto/meta-afb-edge"

for f in "$poky/oe-init-build-env" "$poky/bitbake/bin/bitbake" "$meta_oe/meta-oe/conf/layer.conf" "$layer/conf/layer.conf"; do
    [ -e "$f" ] || { echo "yocto-bitbake-check: $f is missing (POKY_DIR=$poky, META_OE_DIR=$meta_oe)" >&2; exit 2; }
done

# bitbake refuses to run as root: start again as an ordinary user.
if [ "$(id -u)" -eq 0 ]; then
    if ! id "$user" >/dev/null 2>&1; then
        useradd --create-home --shell /bin/bash "$user" || exit 2
        echo "yocto-bitbake-check: created user $user (bitbake refuses root)"
    fi
    for d in "$build_dir" "$dl_dir"; do
        [ -n "$d" ] && { mkdir -p "$d" && chown "$user:" "$d" || exit 2; }
    done
    home=$(getent passwd "$user" | cut -d: -f6)
    exec runuser -u "$user" -- env HOME="$home" PATH="$PATH" LANG=en_US.UTF-8 "$0" "${args[@]}"
fi

export LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8
if [ -z "$build_dir" ]; then
    build_dir=$(mktemp -d "${TMPDIR:-/tmp}/afb-edge-bitbake.XXXXXX") || exit 2
    trap '[ $keep -eq 1 ] || rm -rf "$build_dir"' EXIT
fi
build_dir=$(realpath "$build_dir")
logs="$build_dir/logs"
mkdir -p "$logs"
failures=0

# One verdict line per step: verdict NAME SECONDS STATUS DETAIL
verdict() {
    local name=$1 secs=$2 status=$3 detail=$4
    printf '%-4s %-58s %5ss  %s\n' "$status" "$name" "$secs" "$detail"
    [ "$status" = PASS ] || failures=$((failures + 1))
}

# Runs a command in the build environment (bitbake, bitbake-layers, ...), niced: the build host is shared.
# With $init_manager set, bitbake takes INIT_MANAGER from the environment (local.conf has "?=").
init_manager=""
in_env() {
    (
        set +u
        cd "$poky" && . ./oe-init-build-env "$build_dir/build" >/dev/null || exit 1
        if [ -n "$init_manager" ]; then
            export INIT_MANAGER=$init_manager BB_ENV_PASSTHROUGH_ADDITIONS="$BB_ENV_PASSTHROUGH_ADDITIONS INIT_MANAGER"
        fi
        nice -n 10 "$@"
    )
}

# step NAME LOG COMMAND...: runs it, PASS if it exits 0 and its log holds no ERROR line.
step() {
    local name=$1 log="$logs/$2.log"; shift 2
    local t0=$SECONDS rc
    in_env "$@" >"$log" 2>&1
    rc=$?
    local errors
    errors=$(grep -c '^ERROR:' "$log")
    if [ $rc -eq 0 ] && [ "$errors" -eq 0 ]; then
        verdict "$name" $((SECONDS - t0)) PASS "$(tail_summary "$log")"
        return 0
    fi
    verdict "$name" $((SECONDS - t0)) FAIL "exit $rc, $errors ERROR line(s): $(grep -m1 '^ERROR:' "$log" | cut -c1-160) (logs/$(basename "$log"))"
    return 1
}

# The last line bitbake ends a run with (a summary), for the verdict.
tail_summary() {
    grep -E '^(NOTE: Tasks Summary|Summary: |Parsing of|NOTE: Resolving|Ran [0-9]+ tests)' "$1" | tail -1 | cut -c1-110
}

# -------------------------------------------------------------------- setup
t0=$SECONDS
git_mirror="$build_dir/afb-edge.git"
# The project belongs to another user (bitbake's runs as an ordinary one): git's
# ownership check would refuse to read it.
pgit() { git -c safe.directory='*' "$@"; }
rev=$(pgit -C "$root" rev-parse HEAD)
branch=$(pgit -C "$root" symbolic-ref --short -q HEAD || true)
if ! pgit clone -q --mirror --upload-pack="git -c safe.directory='*' upload-pack" "$root" "$git_mirror" >"$logs/setup.log" 2>&1; then
    verdict "setup: local clone of the project" $((SECONDS - t0)) FAIL "git clone --mirror $root failed (logs/setup.log)"
    exit 1
fi
if ! in_env true >>"$logs/setup.log" 2>&1; then
    verdict "setup: oe-init-build-env" $((SECONDS - t0)) FAIL "(logs/setup.log)"
    exit 1
fi
conf="$build_dir/build/conf"
cp "$conf/bblayers.conf" "$conf/bblayers.conf.without-afb-edge"
{
    echo
    echo "# --- scripts/yocto-bitbake-check.sh"
    echo "MACHINE = \"$machine\""
    echo '# systemd as init manager (the afb-edge recipes require the systemd distro feature);'
    echo '# "?=": the step without systemd sets INIT_MANAGER from the environment.'
    echo 'INIT_MANAGER ?= "systemd"'
    echo '# The build host is shared: two at a time.'
    echo 'BB_NUMBER_THREADS = "2"'
    echo 'BB_NUMBER_PARSE_THREADS = "2"'
    echo 'PARALLEL_MAKE = "-j 2"'
    [ -n "$dl_dir" ] && echo "DL_DIR = \"$(realpath "$dl_dir")\""
    if [ $offline -eq 1 ]; then
        echo '# Only because this build host has no internet (--offline): no connectivity'
        echo '# check (it fetches example.com), no uninative tarball (downloaded by poky).'
        echo 'CONNECTIVITY_CHECK_URIS = ""'
        echo 'INHERIT:remove = "uninative"'
    fi
} >>"$conf/local.conf"
# The sources: a local clone of this repository, at the commit of HEAD. Read
# with bitbake -R (after local.conf), so that the steps meant to run without
# AFB_EDGE_GIT_URL (yocto-check-layer) do.
cat >"$conf/afb-edge-source.conf" <<EOF
AFB_EDGE_GIT_URL = "git://$git_mirror;protocol=file"
AFB_EDGE_GIT_BRANCH = "${branch:-main}"
SRCREV:pn-afb-edge = "$rev"
EOF
[ -n "$branch" ] || sed -i 's/^AFB_EDGE_GIT_BRANCH.*/AFB_EDGE_GIT_URL:append = ";nobranch=1"/' "$conf/afb-edge-source.conf"
src=(-R "$conf/afb-edge-source.conf")

bitbake_version=$(in_env bitbake --version 2>/dev/null | tail -1)
series=$(in_env bitbake-getvar --value LAYERSERIES_CORENAMES 2>/dev/null | tail -1)
verdict "setup: build directory, local clone at ${rev:0:12}" $((SECONDS - t0)) PASS "$bitbake_version; core series: $series; $build_dir"
if [ -n "$(pgit -C "$root" status --porcelain -- . ':!yocto')" ]; then
    echo "note: uncommitted changes outside yocto/ are not in what bitbake fetches (HEAD ${rev:0:12})"
fi

# -------------------------------------------------------------------- layers
step "bitbake-layers add-layer meta-oe meta-afb-edge" add-layer bitbake-layers add-layer "$meta_oe/meta-oe" "$layer"
t0=$SECONDS
in_env bitbake-layers show-layers >"$logs/show-layers.log" 2>&1
# (collection, path, priority)
if grep -qE "^openembedded-layer +$meta_oe/meta-oe " "$logs/show-layers.log" && grep -qE "^afb-edge +$layer +7\b" "$logs/show-layers.log"; then
    verdict "bitbake-layers show-layers" $((SECONDS - t0)) PASS "$(sed '1,/^====/d' "$logs/show-layers.log" | grep -c ' /') layers, afb-edge (meta-afb-edge) at priority 7"
else
    verdict "bitbake-layers show-layers" $((SECONDS - t0)) FAIL "meta-oe or meta-afb-edge missing (logs/show-layers.log)"
fi

# -------------------------------------------------------------------- AFB_EDGE_GIT_URL unset
step "bitbake -p (AFB_EDGE_GIT_URL unset)" parse-unset bitbake -p
# Both recipes skipped, with the message saying what to set.
t0=$SECONDS
in_env bitbake -e packagegroup-afb-edge >"$logs/skip-unset.log" 2>&1
in_env bitbake -e afb-edge >>"$logs/skip-unset.log" 2>&1
n=$(grep -c 'was skipped: set AFB_EDGE_GIT_URL' "$logs/skip-unset.log")
if [ "$n" -ge 2 ]; then
    verdict "unset: afb-edge, packagegroup skipped, saying why" $((SECONDS - t0)) PASS "$(grep -m1 -o "afb-edge was skipped: set AFB_EDGE_GIT_URL[^,]*" "$logs/skip-unset.log")"
else
    verdict "unset: afb-edge, packagegroup skipped, saying why" $((SECONDS - t0)) FAIL "$n skip message(s), 2 expected (logs/skip-unset.log)"
fi

# -------------------------------------------------------------------- AFB_EDGE_GIT_URL set
step "bitbake -p (AFB_EDGE_GIT_URL = the local clone)" parse bitbake "${src[@]}" -p

# The key variables as bitbake resolves them.
t0=$SECONDS
in_env bitbake "${src[@]}" -e afb-edge >"$logs/env-afb-edge.log" 2>&1
in_env bitbake "${src[@]}" -e packagegroup-afb-edge >"$logs/env-packagegroup.log" 2>&1
getvar() { sed -n "s/^$2=\"\\(.*\\)\"\$/\\1/p" "$logs/$1.log" | tail -1; }
problems=()
uri=$(getvar env-afb-edge SRC_URI)
case "$uri" in *"git://$git_mirror;protocol=file;branch="*) ;; *) problems+=("SRC_URI has no git entry for the local clone");; esac
case "$uri" in *"npmsw://$layer/recipes-afb-edge/afb-edge/afb-edge/npm-shrinkwrap.json"*) ;; *) problems+=("SRC_URI has no npmsw entry for the layer's shrinkwrap");; esac
[ "$(getvar env-afb-edge SRCREV)" = "$rev" ] || problems+=("SRCREV is $(getvar env-afb-edge SRCREV), not $rev")
license=$(getvar env-afb-edge LICENSE)
[ "$(getvar env-afb-edge 'LICENSE:afb-edge')" = "$license" ] || problems+=("LICENSE:afb-edge is '$(getvar env-afb-edge 'LICENSE:afb-edge')', LICENSE is '$license'")
case " $license " in *" PD "*) ;; *) problems+=("LICENSE lacks PD (SQLite)");; esac
nodejs=$(getvar env-afb-edge 'RDEPENDS:afb-edge' | tr ' ' '\n' | grep -cx nodejs)
[ "$nodejs" -eq 1 ] || problems+=("RDEPENDS:afb-edge names nodejs $nodejs times")
[ "$(getvar env-afb-edge 'SYSTEMD_SERVICE:afb-edge')" = "afb-edge.service afb-edge-ecu.socket" ] || problems+=("SYSTEMD_SERVICE:afb-edge is '$(getvar env-afb-edge 'SYSTEMD_SERVICE:afb-edge')'")
[ "$(getvar env-afb-edge 'CONFFILES:afb-edge')" = "/etc/afb-edge/afb-edge.yaml" ] || problems+=("CONFFILES:afb-edge is '$(getvar env-afb-edge 'CONFFILES:afb-edge')'")
boards=$(getvar env-afb-edge AFB_EDGE_BOARDS)
packages=" $(getvar env-afb-edge PACKAGES) "
for b in $boards; do
    case "$packages" in *" afb-edge-board-$b "*) ;; *) problems+=("PACKAGES lacks afb-edge-board-$b");; esac
    lic=$(getvar env-afb-edge "LICENSE:afb-edge-board-$b")
    [ "$lic" = "Apache-2.0" ] || problems+=("LICENSE:afb-edge-board-$b is '$lic'")
done
[ -n "$boards" ] || problems+=("AFB_EDGE_BOARDS is empty")
pg=" $(getvar env-packagegroup 'RDEPENDS:packagegroup-afb-edge') "
board=$(getvar env-packagegroup AFB_EDGE_BOARD)
case "$pg" in *" afb-edge "*) ;; *) problems+=("packagegroup-afb-edge does not RDEPEND on afb-edge");; esac
if [ -n "$board" ]; then
    case "$pg" in *" afb-edge-board-$board "*) ;; *) problems+=("packagegroup-afb-edge does not RDEPEND on afb-edge-board-$board");; esac
fi
if [ ${#problems[@]} -eq 0 ] && [ -n "$uri" ]; then
    verdict "bitbake -e afb-edge, packagegroup-afb-edge: key variables" $((SECONDS - t0)) PASS \
        "SRCREV ${rev:0:12}, LICENSE:afb-edge = LICENSE ($(echo "$license" | wc -w | tr -d ' ') words), nodejs once, $(echo "$boards" | wc -w | tr -d ' ') board packages, $machine -> ${board:-no board}"
else
    [ -n "$uri" ] || problems+=("bitbake -e failed (logs/env-afb-edge.log)")
    verdict "bitbake -e afb-edge, packagegroup-afb-edge: key variables" $((SECONDS - t0)) FAIL "$(IFS=';'; echo "${problems[*]}")"
fi

step "bitbake -n afb-edge" dry-run bitbake "${src[@]}" -n afb-edge
step "bitbake -n packagegroup-afb-edge" dry-run-packagegroup bitbake "${src[@]}" -n packagegroup-afb-edge

# -------------------------------------------------------------------- fetch, unpack
step "bitbake afb-edge -c fetch (local git, npm registry)" fetch bitbake "${src[@]}" afb-edge -c fetch
if step "bitbake afb-edge -c unpack" unpack bitbake "${src[@]}" afb-edge -c unpack; then
    t0=$SECONDS
    s=$(getvar env-afb-edge S)
    problems=()
    [ "$(git -C "$s" rev-parse HEAD 2>/dev/null)" = "$rev" ] || problems+=("$s is not at $rev")
    for f in package.json npm-shrinkwrap.json node_modules/better-sqlite3/deps/sqlite3/sqlite3.h node_modules/@serialport/bindings-cpp/binding.gyp; do
        [ -e "$s/$f" ] || problems+=("no $f in S")
    done
    # The build tools, where do_afb_edge_prepare and do_install look for them.
    unpackdir=$(getvar env-afb-edge AFB_EDGE_UNPACKDIR)
    for f in afb-edge-tsc/package/bin/tsc afb-edge-esbuild/package/lib/main.js; do
        [ -e "$unpackdir/$f" ] || problems+=("no $f in AFB_EDGE_UNPACKDIR ($unpackdir)")
    done
    n=$(find "$s/node_modules" -name package.json -path '*/node_modules/*/package.json' -not -path '*/node_modules/*/*/*/package.json' 2>/dev/null | wc -l)
    if [ ${#problems[@]} -eq 0 ]; then
        verdict "unpacked tree: the commit, the shrinkwrap's packages" $((SECONDS - t0)) PASS "S at ${rev:0:12}, $n packages in node_modules, tsc and esbuild-wasm in ${unpackdir#$build_dir/build/tmp/work/}"
    else
        verdict "unpacked tree: the commit, the shrinkwrap's packages" $((SECONDS - t0)) FAIL "$(IFS=';'; echo "${problems[*]}")"
    fi
fi

# -------------------------------------------------------------------- no systemd
# (Last of the bitbake steps: another configuration, another parse.)
# Without systemd: skipped too, both of them.
t0=$SECONDS
# A whole distro without systemd (INIT_MANAGER): removing the feature alone
# would contradict VIRTUAL-RUNTIME_init_manager, and the parse stops on that.
init_manager=sysvinit
in_env bitbake "${src[@]}" -e packagegroup-afb-edge >"$logs/skip-no-systemd.log" 2>&1
in_env bitbake "${src[@]}" -e afb-edge >>"$logs/skip-no-systemd.log" 2>&1
init_manager=
n=$(grep -c "was skipped: missing required distro feature 'systemd'" "$logs/skip-no-systemd.log")
if [ "$n" -ge 2 ]; then
    verdict "no systemd: afb-edge, packagegroup skipped, saying why" $((SECONDS - t0)) PASS "INIT_MANAGER=sysvinit: missing required distro feature 'systemd'"
else
    verdict "no systemd: afb-edge, packagegroup skipped, saying why" $((SECONDS - t0)) FAIL "$n skip message(s), 2 expected (logs/skip-no-systemd.log)"
fi

# -------------------------------------------------------------------- yocto-check-layer
# It adds the layer and its dependency itself, to a bblayers.conf without
# them; AFB_EDGE_GIT_URL is unset, as in any build that just adds the layer.
cp "$conf/bblayers.conf" "$conf/bblayers.conf.with-afb-edge"
cp "$conf/bblayers.conf.without-afb-edge" "$conf/bblayers.conf"
t0=$SECONDS
# --no-auto-dependency: test this layer, not meta-oe too (another half hour).
in_env yocto-check-layer --no-auto-dependency --dependency "$meta_oe/meta-oe" -- "$layer" >"$logs/yocto-check-layer.log" 2>&1
rc=$?
cp "$conf/bblayers.conf.with-afb-edge" "$conf/bblayers.conf"
ran=$(grep -m1 -oE 'Ran [0-9]+ tests?' "$logs/yocto-check-layer.log")
outcome=$(grep -E '^INFO: (OK|FAILED)' "$logs/yocto-check-layer.log" | tail -1 | sed 's/^INFO: *//')
result=$(grep -E '^INFO: meta-afb-edge \.\.\. ' "$logs/yocto-check-layer.log" | tail -1 | sed 's/^INFO: *//')
if [ $rc -eq 0 ] && [ "${outcome%% *}" = OK ] && [ "$result" = "meta-afb-edge ... PASS" ]; then
    verdict "yocto-check-layer meta-afb-edge (dependency meta-oe)" $((SECONDS - t0)) PASS "$ran: $outcome; $result"
else
    verdict "yocto-check-layer meta-afb-edge (dependency meta-oe)" $((SECONDS - t0)) FAIL "exit $rc, $ran: ${outcome:-no result}; ${result:-no summary} (logs/yocto-check-layer.log)"
fi
# Each test and its outcome (the line after its name).
awk '/^INFO: (test_[a-z_]+|setUpClass) \(/ { name = ($2 == "setUpClass") ? $2 " " $3 : $2; next }
     name != "" && /^INFO:  \.\.\. / { sub(/^INFO:  \.\.\. /, ""); printf "     %-40s %s\n", name, $0; name = "" }' "$logs/yocto-check-layer.log"

echo
if [ $failures -eq 0 ]; then
    echo "yocto-bitbake-check: all steps passed ($((SECONDS / 60)) min)"
else
    echo "yocto-bitbake-check: $failures step(s) failed; logs in $logs$([ $keep -eq 1 ] || echo ' (kept)')"
    keep=1
fi
exit $((failures > 0))
