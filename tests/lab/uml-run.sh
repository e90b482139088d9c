#!/bin/bash
# uml-run.sh SCENARIO [OUTDIR] -- boot a user-mode Linux kernel whose root is
# this machine's own filesystem (hostfs), run SCENARIO (a bash script) inside
# it as root, and exit with the scenario's exit status.
#
# Inside the guest, SCENARIO runs with its working directory set to OUTDIR and
# these variables exported: LAB_DIR (this folder), LAB_OUT (OUTDIR, on the host
# filesystem, so whatever is written there survives), LAB_MODDIR (modprobe -d
# root) plus everything listed in LAB_PASS_ENV. Its stdout+stderr go to
# OUTDIR/scenario.log, the kernel console to OUTDIR/console.log.
#
# Environment knobs:
#   UML_MEM       guest memory (default 768M)
#   UML_TIMEOUT   seconds for the whole boot+scenario+halt (default 300)
#   UML_MODULES   modules loaded before the scenario starts (default below)
#   LAB_PASS_ENV  space-separated names of host variables handed to the scenario
#   LAB_QUIET=1   do not echo the scenario log to stdout at the end
#
# Exit status: the scenario's; 124 if the run timed out; 125 if the kernel did
# not boot or the scenario never reported a status (harness failure).
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=packages.sh
. "$LAB_DIR/packages.sh"

die() { echo "uml-run: FAILURE: $*" >&2; exit 125; }

[ $# -ge 1 ] || { echo "usage: $0 SCENARIO [OUTDIR]" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (UML guest gets root on the hostfs root)"
SCENARIO=$(realpath "$1")
[ -f "$SCENARIO" ] || die "no scenario file $1"
OUTDIR=${2:-}
if [ -z "$OUTDIR" ]; then
    OUTDIR=$(mktemp -d /tmp/uml-lab-out.XXXXXX)
else
    mkdir -p "$OUTDIR"
    OUTDIR=$(realpath "$OUTDIR")
fi

UML_MEM=${UML_MEM:-768M}
UML_TIMEOUT=${UML_TIMEOUT:-300}
UML_MODULES=${UML_MODULES:-"xfrm_user esp4 esp6 ah4 xfrm4_tunnel xfrm6_tunnel ipcomp veth dummy \
gcm ghash_generic jitterentropy_rng seqiv echainiv authenc authencesn cbc ctr chacha20poly1305 sha512_generic aes_ti"}

lab_ensure_packages user-mode-linux kmod iproute2 iputils-ping gcc libc6-dev

UML_BIN=/usr/bin/linux.uml
[ -x "$UML_BIN" ] || die "$UML_BIN missing after installing user-mode-linux"
KVER=$(find /usr/lib/uml/modules -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n1)
[ -n "$KVER" ] || die "no module folder under /usr/lib/uml/modules"

# Per-run work folder: modprobe root, modprobe wrapper and init stub. It lives
# on the host filesystem, which the guest sees at the same path.
WORK=$(mktemp -d /tmp/uml-lab-work.XXXXXX)
GUEST_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/moddir/lib"
ln -s /usr/lib/uml/modules "$WORK/moddir/lib/modules"
# The kernel asks for a module "crypto-NAME" for each algorithm name it has
# not seen, template instances included ("crypto-rfc4106(gcm(aes))"): no
# module has such an alias, and each modprobe start costs 0.3-0.6 s in UML,
# several seconds inside the first SA add of a boot (tests/lab/README.md).
# Those names are answered "no such module" at once.
cat > "$WORK/modprobe" <<EOM
#!/bin/sh
case "\$*" in *"("*) exit 1 ;; esac
exec env GLIBC_TUNABLES=$GUEST_TUNABLES /sbin/modprobe -d $WORK/moddir "\$@"
EOM
chmod +x "$WORK/modprobe"
# linux.uml 6.1 cannot set the FPU state of its processes on hosts whose
# XSAVE area is larger than 832 bytes (AVX-512, AMX): uml-xstate-shim.c.
gcc -O2 -shared -fPIC -o "$WORK/xstate-shim.so" "$LAB_DIR/uml-xstate-shim.c" -ldl ||
    die "cannot build $LAB_DIR/uml-xstate-shim.c"

{
    printf 'LAB_DIR=%q\nLAB_OUT=%q\nLAB_SCENARIO=%q\n' "$LAB_DIR" "$OUTDIR" "$SCENARIO"
    printf 'LAB_MODDIR=%q\nLAB_MODPROBE=%q\nLAB_MODULES=%q\n' "$WORK/moddir" "$WORK/modprobe" "$UML_MODULES"
    printf 'LAB_SCENARIO_TIMEOUT=%q\n' "$((UML_TIMEOUT - 10))"
    printf 'LAB_PASS_ENV=%q\n' "${LAB_PASS_ENV:-}"
    for v in ${LAB_PASS_ENV:-}; do
        printf '%s=%q\n' "$v" "${!v-}"
    done
} > "$WORK/env"
cat > "$WORK/init" <<EOM
#!/bin/bash
# glibc in the guest without its AVX-512 string functions: the shim keeps
# AVX-512 state per host process, which UML shares between the threads of
# one guest process.
exec env GLIBC_TUNABLES=$GUEST_TUNABLES /bin/bash $LAB_DIR/uml-init.sh $WORK/env
EOM
chmod +x "$WORK/init"

rm -f "$OUTDIR/status" "$OUTDIR/booted" "$OUTDIR/console.log" "$OUTDIR/scenario.log"
echo "uml-run: booting $UML_BIN ($KVER, mem=$UML_MEM) for $(basename "$SCENARIO"), output in $OUTDIR" >&2
t0=$(date +%s.%N)
rc=0
# UML backs its memory with a file in TMPDIR: tmpfs if there is room, the
# work folder otherwise. The console goes to a file.
UML_TMP=$WORK
if [ -d /dev/shm ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] &&
    [ "$(df -Pk /dev/shm | awk 'NR==2{print $4}')" -gt $(( $(numfmt --from=iec "${UML_MEM%B}") / 1024 + 65536 )) ]; then
    UML_TMP=$(mktemp -d /dev/shm/uml-lab.XXXXXX)
    trap 'rm -rf "$WORK" "$UML_TMP"' EXIT
fi
TMPDIR=$UML_TMP timeout --kill-after=10 "$UML_TIMEOUT" \
    env LD_PRELOAD="$WORK/xstate-shim.so" "$UML_BIN" mem="$UML_MEM" rootfstype=hostfs rw init="$WORK/init" \
    con=null con0=null,fd:1 </dev/null >"$OUTDIR/console.log" 2>&1 || rc=$?
t1=$(date +%s.%N)
elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')

if [ "${LAB_QUIET:-0}" != 1 ] && [ -f "$OUTDIR/scenario.log" ]; then
    sed 's/^/  | /' "$OUTDIR/scenario.log" >&2
fi
if [ ! -f "$OUTDIR/booted" ]; then
    echo "--- last console lines ---" >&2
    tail -n 30 "$OUTDIR/console.log" >&2 || true
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        die "UML kernel did not reach init within ${UML_TIMEOUT}s (see $OUTDIR/console.log)"
    fi
    die "UML kernel did not boot (linux.uml exit $rc, see $OUTDIR/console.log)"
fi
if [ ! -f "$OUTDIR/status" ]; then
    echo "--- last console lines ---" >&2
    tail -n 30 "$OUTDIR/console.log" >&2 || true
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        echo "uml-run: FAILURE: timed out after ${UML_TIMEOUT}s, scenario never reported" >&2
        exit 124
    fi
    die "scenario never reported a status (linux.uml exit $rc, see $OUTDIR/console.log)"
fi
status=$(cat "$OUTDIR/status")
echo "uml-run: scenario $(basename "$SCENARIO") exited $status; boot to init $(cat "$OUTDIR/booted")s, whole run ${elapsed}s" >&2
case $status in ''|*[!0-9]*) die "bad status '$status'";; esac
if [ "$status" = 124 ]; then
    echo "uml-run: FAILURE: scenario timed out inside the guest (after $((UML_TIMEOUT - 10))s)" >&2
fi
exit "$status"
