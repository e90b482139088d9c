# bench-ra.sh -- scenario (inside UML via uml-run.sh): issue 18's
# road-warrior benchmark. For each gateway in BENCH_GATEWAYS and each N in
# BENCH_N: N road warriors connect at once to the gateway, each with its own
# EAP-MSCHAPv2 user and a virtual IP from the gateway's pool, the gateway
# proving itself with an ECDSA P-256 certificate
# (aes128gcm16-prfsha256-x25519, ESP aes128gcm16).
#
#   rws 192.0.2.2 and 198.18.x.y (one charon, N connections, one address each)
#       === 192.0.2.1 gw (the gateway: charon or iked) -- 10.1.0.0/24
#
# The road warriors are one charon with N connections (one IKE SA each,
# its own user@ra.example, `vips = 0.0.0.0`): N charons would measure UML's
# process start, not the gateway. The same swanctl.conf for the gateway
# serves both daemons (charon through swanctl --load-all, iked reads it).
# Measured: time from the clients' N `swanctl --initiate` (started in the
# background one after the other, once the clients' charon has loaded its
# connections) until the gateway's kernel has all 2N SAs and all N leases are
# distinct; the gateway's RSS before the clients start, its peak RSS
# (VmHWM) after, and the growth per client; the gateway's CPU seconds.
# Prints one "RESULT ..." line per run. Fails loudly when a daemon does not
# start or not all N come up within BENCH_CAP seconds.
#
# IKED: path of iked (for the gateway `iked`); BENCH_PYTHON: a python3
# with the vici module (the guest's PATH may find another one).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$LAB_DIR/lib.sh"
GATEWAYS=${BENCH_GATEWAYS:-charon}
NS_LIST=${BENCH_N:-50 200}
CAP=${BENCH_CAP:-120}
IKE=aes128gcm16-prfsha256-x25519 ESP=aes128gcm16
GW=192.0.2.1 RWS=192.0.2.2
CHARON_PLUGINS="$CHARON_PLUGINS eap-identity eap-mschapv2"

pki() { # DIR
    mkdir -p "$1"
    (
        cd "$1"
        openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
        openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out gw.key
        openssl req -x509 -new -key ca.key -subj '/C=CH/O=iked lab/CN=ra bench root' -days 2 -out ca.pem \
            -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign
        openssl req -new -key gw.key -subj '/C=CH/O=iked lab/CN=gw.ra.example' -out gw.csr
        printf 'subjectAltName=DNS:gw.ra.example\n' > gw.ext
        openssl x509 -req -in gw.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile gw.ext -out gw.pem 2>/dev/null
    )
}

# creds DIR GW?: the swanctl credential folders beside DIR/swanctl.conf.
creds() {
    mkdir -p "$1/x509" "$1/x509ca" "$1/private"
    cp "$LAB_OUT/pki/ca.pem" "$1/x509ca/"
    if [ "$2" = yes ]; then
        cp "$LAB_OUT/pki/gw.pem" "$1/x509/"
        cp "$LAB_OUT/pki/gw.key" "$1/private/"
    fi
}

# gw_conf N FILE: one connection, pool 10.3.0.0/16, N users.
gw_conf() {
    local n=$1 k
    {
        printf 'connections {\n    rw {\n        local_addrs = %s\n        pools = rw\n' "$GW"
        printf '        proposals = %s\n        rekey_time = 0\n' "$IKE"
        printf '        local {\n            auth = pubkey\n            certs = gw.pem\n            id = gw.ra.example\n        }\n'
        printf '        remote {\n            auth = eap-mschapv2\n            eap_id = %%any\n        }\n'
        printf '        children {\n            net {\n                local_ts = 10.1.0.0/24\n'
        printf '                esp_proposals = %s\n                rekey_time = 0\n            }\n        }\n    }\n}\n' "$ESP"
        printf 'pools {\n    rw {\n        addrs = 10.3.0.0/16\n        dns = 10.1.0.53\n    }\n}\n'
        echo "secrets {"
        for ((k = 0; k < n; k++)); do
            printf '    eap-u%d {\n        id = u%d@ra.example\n        secret = "password of u%d"\n    }\n' "$k" "$k" "$k"
        done
        echo "}"
    } > "$2"
}

# rw_addr K: client K's own address (198.18.0.0/15, RFC 2544's range).
rw_addr() { echo "198.18.$(($1 / 250)).$(($1 % 250 + 1))"; }

# rw_conf N FILE: N connections, each its own user and source address.
rw_conf() {
    local n=$1 k
    {
        echo "connections {"
        for ((k = 0; k < n; k++)); do
            printf '    u%d {\n        local_addrs = %s\n        remote_addrs = %s\n        vips = 0.0.0.0\n' \
                "$k" "$(rw_addr "$k")" "$GW"
            printf '        proposals = %s\n        rekey_time = 0\n' "$IKE"
            printf '        local {\n            auth = eap-mschapv2\n            id = u%d@ra.example\n        }\n' "$k"
            printf '        remote {\n            auth = pubkey\n            id = gw.ra.example\n        }\n'
            printf '        children {\n            u%d {\n                remote_ts = 10.1.0.0/24\n' "$k"
            printf '                esp_proposals = %s\n                rekey_time = 0\n' "$ESP"
            printf '            }\n        }\n    }\n'
        done
        echo "}"
        echo "secrets {"
        for ((k = 0; k < n; k++)); do
            printf '    eap-u%d {\n        id = u%d@ra.example\n        secret = "password of u%d"\n    }\n' "$k" "$k" "$k"
        done
        echo "}"
    } > "$2"
}

kb() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"; }
cpu_s() { # PID: user+system seconds
    awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"
}
sa_count() { ip -n "$1" xfrm state | grep -c '^src' || true; }

lab_log "building the topology"
for ns in gw rws; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
lab_veth gw wan "$GW/24" rws eth0 "$RWS/24"
ip -n gw link add lan type dummy
ip -n gw addr add 10.1.0.1/24 dev lan
ip -n gw link set lan up
lab_wait_for 10 "rws reaches the gateway" lab_ns rws ping -c1 -W1 "$GW"
# Each client its own address, as road warriors have: a gateway limits
# the half-open IKE SAs per source address (charon 5: block_threshold),
# and one address for all would measure that limit.
nmax=$(printf '%s\n' $NS_LIST | sort -n | tail -1)
for ((k = 0; k < nmax; k++)); do echo "addr add $(rw_addr "$k")/32 dev eth0"; done > "$LAB_OUT/rws-addrs"
ip -n rws -batch "$LAB_OUT/rws-addrs"
ip -n gw route add 198.18.0.0/15 via "$RWS"
lab_warm_crypto
pki "$LAB_OUT/pki"

for gwd in $GATEWAYS; do
    for n in $NS_LIST; do
        # A size given twice (BENCH_N="20 20") keeps both runs' logs.
        run=$gwd-$n
        rep=2
        while [ -e "$LAB_OUT/$run" ]; do run=$gwd-$n.$rep; rep=$((rep + 1)); done
        lab_log "run $run"
        dir=$LAB_OUT/$run
        mkdir -p "$dir/gw"
        gw_conf "$n" "$dir/gw/swanctl.conf"
        rw_conf "$n" "$dir/rws-swanctl.conf"
        case $gwd in
        charon)
            mkdir -p "$LAB_OUT/charon-gw-$run"
            creds "$LAB_OUT/charon-gw-$run" yes
            lab_charon_start "gw-$run" gw "$dir/gw/swanctl.conf" "default=1"
            gpid=$(cat "$LAB_STATE/gw-$run/run/charon.pid")
            ;;
        iked)
            : "${IKED:?path of iked}"
            creds "$dir/gw" yes
            chmod 600 "$dir/gw/swanctl.conf"
            ip netns exec gw "$IKED" --config "$dir/gw/swanctl.conf" --control "$dir/iked.sock" \
                --log-level info 2> "$dir/iked.log" &
            gpid=$!
            lab_wait_for 30 "iked's control socket" test -S "$dir/iked.sock"
            ;;
        *) lab_fail "BENCH_GATEWAYS: charon or iked, not $gwd"; exit 1 ;;
        esac
        rss0=$(kb "$gpid" VmRSS)
        cpu0=$(cpu_s "$gpid")
        # The clients' charon, loaded before the clock starts (swanctl
        # --load-all of 100 connections takes 20 s in UML, and charon's
        # start_action = start would spread the clients over that time);
        # then all clients initiated from one VICI session (python's vici
        # module, as scripts/bench/engine.py): one swanctl process per
        # client spread them over 28 s for 100 (a process start costs
        # 0.1-0.3 s in UML). `timeout: -1`: charon answers at once; a
        # waiting initiate holds one of its 16 threads.
        mkdir -p "$LAB_OUT/charon-rws-$run"
        creds "$LAB_OUT/charon-rws-$run" no
        lab_charon_start "rws-$run" rws "$dir/rws-swanctl.conf" "default=1"
        t0=$(date +%s.%N)
        "${BENCH_PYTHON:-python3}" - "$LAB_STATE/rws-$run/run/vici" "$n" <<'PY' || { lab_fail "initiating the clients"; exit 1; }
import socket, sys, vici
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
v = vici.Session(s)
for k in range(int(sys.argv[2])):
    for _ in v.initiate({"child": f"u{k}", "timeout": -1}):
        pass
PY
        all=yes
        end=$(( $(date +%s) + CAP ))
        until [ "$(sa_count gw)" -ge $((2 * n)) ]; do
            if [ "$(date +%s)" -ge "$end" ]; then all=no; break; fi
            sleep 0.1
        done
        t1=$(date +%s.%N)
        got=$(sa_count gw)
        hwm=$(kb "$gpid" VmHWM)
        rss1=$(kb "$gpid" VmRSS)
        cpu1=$(cpu_s "$gpid")
        # Every client's virtual IP is on the clients' interface, all distinct.
        vips=$(ip -n rws -4 -o addr show | grep -c ' 10\.3\.' || true)
        uniq=$(ip -n rws -4 -o addr show | grep -o ' 10\.3\.[0-9.]*' | sort -u | wc -l)
        secs=$(echo "$t1 - $t0" | bc)
        per=$(echo "scale=1; ($rss1 - $rss0) / $n" | bc)
        echo "RESULT gateway=$gwd n=$n all=$all sas=$got vips=$vips distinct=$uniq seconds=$secs" \
            "rss_before_kb=$rss0 rss_after_kb=$rss1 hwm_kb=$hwm kb_per_client=$per cpu_s=$(echo "$cpu1 - $cpu0" | bc)"
        lab_charon_stop "rws-$run"
        case $gwd in
        charon) lab_charon_stop "gw-$run" ;;
        iked) kill "$gpid"; wait "$gpid" || true ;;
        esac
        ip -n gw xfrm state flush; ip -n gw xfrm policy flush
        ip -n rws xfrm state flush; ip -n rws xfrm policy flush
        [ "$all" = yes ] && [ "$vips" -eq "$n" ] && [ "$uniq" -eq "$n" ] ||
            { lab_fail "$run: $got of $((2 * n)) SAs, $vips virtual IPs ($uniq distinct) for $n clients"; exit 1; }
    done
done
