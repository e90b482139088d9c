#!/bin/bash
# uml-init.sh ENVFILE -- PID 1 inside the UML guest (started by uml-run.sh).
# Mounts the pseudo filesystems, loads modules, runs the scenario, writes its
# exit status to $LAB_OUT/status and halts the kernel. Never returns.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C
# shellcheck disable=SC1090
. "$1"

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=755 run /run     # guest's own /run: pid files, netns
mount -t tmpfs -o mode=1777 shm /dev/shm 2>/dev/null
read -r up _ < /proc/uptime
echo "$up" > "$LAB_OUT/booted"

{
    echo "$LAB_MODPROBE" > /proc/sys/kernel/modprobe
    # One modprobe for all (each process start is tens of ms in UML); if
    # one fails, each again on its own, so that the log names it.
    # shellcheck disable=SC2086
    if ! modprobe -d "$LAB_MODDIR" -a $LAB_MODULES; then
        for m in $LAB_MODULES; do
            modprobe -d "$LAB_MODDIR" "$m" || echo "uml-init: modprobe $m failed"
        done
    fi
    ip link set lo up
} > "$LAB_OUT/init.log" 2>&1

export LAB_DIR LAB_OUT LAB_MODDIR
for v in $LAB_PASS_ENV; do export "${v?}"; done
cd "$LAB_OUT" || exit 1
timeout --kill-after=5 "$LAB_SCENARIO_TIMEOUT" /bin/bash "$LAB_SCENARIO" > "$LAB_OUT/scenario.log" 2>&1
echo $? > "$LAB_OUT/status"
sync
halt -f
echo o > /proc/sysrq-trigger
sleep 5
