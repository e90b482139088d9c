# bench-tunnels.sh -- scenario (inside UML via uml-run.sh): issue 8's tunnel
# set-up benchmark. For each pair in BENCH_PAIRS (initiator-responder:
# iked-iked, charon-charon, iked-charon) and each N in BENCH_N: N tunnels
# gw-a -> gw-b, one IKE SA and one Child SA each (PSK,
# aes256gcm16-prfsha256-x25519, tunnel mode, 10.1.x.y/32 === 10.2.x.y/32),
# started from configuration (start_action = start on gw-a). The same
# swanctl.conf per side is given to both daemons (iked reads it directly,
# charon through swanctl --load-all). Measured: time from the initiator's
# start until all 2N SAs are in gw-a's kernel; peak RSS (VmHWM) and CPU
# seconds of each daemon then; the responder's RSS growth per tunnel.
# Prints one "RESULT ..." line per run (all=no and the count reached when
# not all 2N SAs were there within BENCH_CAP seconds). Fails loudly when a
# daemon does not start or no SA at all comes up.
#
# Needs IKED (path of iked) in the environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$LAB_DIR/lib.sh"
: "${IKED:?path of iked}"
PAIRS=${BENCH_PAIRS:-iked-iked charon-charon iked-charon}
NS_LIST=${BENCH_N:-100}
CAP=${BENCH_CAP:-240}
# Routes toward the remote selectors (both daemons install them by
# default); BENCH_ROUTES=no turns them off in both.
ROUTES=${BENCH_ROUTES:-yes}
IKE=aes256gcm16-prfsha256-x25519 ESP=aes256gcm16

# conf SIDE N FILE: gw-a's (initiator) or gw-b's swanctl.conf.
conf() {
    local side=$1 n=$2 file=$3 k me peer lid rid lnet rnet start
    if [ "$side" = a ]; then
        me=$GW_A_WAN peer=$GW_B_WAN lid=a rid=b lnet=10.1 rnet=10.2 start=start
    else
        me=$GW_B_WAN peer=$GW_A_WAN lid=b rid=a lnet=10.2 rnet=10.1 start=none
    fi
    # printf only (a builtin): a fork per connection is slow in UML.
    {
        echo "connections {"
        for ((k = 0; k < n; k++)); do
            local x y
            x=$((k / 256)) y=$((k % 256))
            printf '    t%d {\n        local_addrs = %s\n        remote_addrs = %s\n' "$k" "$me" "$peer"
            printf '        proposals = %s\n' "$IKE"
            printf '        local {\n            auth = psk\n            id = %s%d.example\n        }\n' "$lid" "$k"
            printf '        remote {\n            auth = psk\n            id = %s%d.example\n        }\n' "$rid" "$k"
            printf '        children {\n            c%d {\n' "$k"
            printf '                local_ts = %s.%d.%d/32\n                remote_ts = %s.%d.%d/32\n' "$lnet" "$x" "$y" "$rnet" "$x" "$y"
            printf '                esp_proposals = %s\n                mode = tunnel\n' "$ESP"
            printf '                start_action = %s\n            }\n        }\n    }\n' "$start"
        done
        echo "}"
        echo "secrets {"
        echo "    ike-all {"
        echo "        secret = bench-tunnels-not-a-secret"
        echo "    }"
        echo "}"
    } > "$file"
    chmod 600 "$file"
}

now() { awk '{ print $1 }' /proc/uptime; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat"; }
# SAs with keys (larval SAs from ALLOCSPI have none and are not counted).
sas() { ip -n "$1" xfrm state | grep -c '^[[:space:]]*aead ' || true; }

# prepare DAEMON SIDE N: its swanctl.conf (before the clock starts).
prepare() {
    local dir=$LAB_OUT/run/$1-$2
    rm -rf "$dir"
    mkdir -p "$dir"
    conf "$2" "$3" "$dir/swanctl.conf"
}

# start DAEMON SIDE: starts it on gw-SIDE; sets PID.
start() {
    local daemon=$1 side=$2 dir
    dir=$LAB_OUT/run/$daemon-$side
    if [ "$daemon" = iked ]; then
        ip netns exec "gw-$side" "$IKED" --config "$dir/swanctl.conf" \
            --control "$dir/iked.sock" --install-routes "$ROUTES" > "$dir/iked.log" 2>&1 &
        PID=$!
        lab_wait_for 60 "iked on gw-$side" test -S "$dir/iked.sock"
    else
        # DoS protection off for the run (cookies and half-open limits).
        lab_charon_start "bench-$side" "gw-$side" "$dir/swanctl.conf" "default=1" \
            "$(printf '    dos_protection = no\n    cookie_threshold = 1000000\n    block_threshold = 1000000\n    init_limit_half_open = 1000000\n    install_routes = %s' "$ROUTES")"
        PID=$(cat "$LAB_STATE/bench-$side/run/charon.pid")
    fi
}

stop() {
    local daemon=$1 side=$2 pid=$3
    if [ "$daemon" = iked ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    else
        lab_charon_stop "bench-$side"
    fi
    ip -n "gw-$side" xfrm state flush
    ip -n "gw-$side" xfrm policy flush
}

lab_make_gateways
# Both daemons' files into the guest's page cache first: loading a binary
# over hostfs is slow and is not the daemons' work.
cat "$IKED" "$CHARON_BIN" /usr/lib/ipsec/*.so* /usr/lib/ipsec/plugins/*.so "$(command -v swanctl)" \
    > /dev/null 2>&1 || true
for n in $NS_LIST; do
    for pair in $PAIRS; do
        di=${pair%-*} dr=${pair#*-}
        prepare "$dr" b "$n"
        prepare "$di" a "$n"
        start "$dr" b; rpid=$PID
        rss0=$(rss_kb "$rpid")
        t0=$(now)
        start "$di" a; ipid=$PID
        want=$((2 * n)) all=yes
        while [ "$(sas gw-a)" -lt "$want" ]; do
            if awk -v a="$(now)" -v b="$t0" -v c="$CAP" 'BEGIN { exit !(a - b > c) }'; then
                all=no
                break
            fi
            sleep 0.1
        done
        t1=$(now) got=$(sas gw-a)
        # Nothing at all is a failure of the set-up; fewer than 2N after
        # the cap is a result (reported with what was reached).
        [ "$got" -gt 0 ] || lab_fail "$pair N=$n: no SA in gw-a's kernel after $CAP s"
        secs=$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')
        line="RESULT pair=$pair n=$n routes=$ROUTES all=$all kernel_sas=$got seconds=$secs"
        line+=" init_hwm_kb=$(hwm_kb "$ipid") resp_hwm_kb=$(hwm_kb "$rpid")"
        line+=" init_cpu_s=$(cpu_s "$ipid") resp_cpu_s=$(cpu_s "$rpid")"
        line+=" resp_kb_per_tunnel=$(awk -v a="$(rss_kb "$rpid")" -v b="$rss0" -v n="$n" 'BEGIN { printf "%.1f", (a - b) / n }')"
        line+=" resp_sas=$(sas gw-b)"
        echo "$line"
        stop "$di" a "$ipid"
        stop "$dr" b "$rpid"
    done
done
lab_destroy_gateways
