# lib.sh -- functions for lab scenarios. Source it from a scenario that
# uml-run.sh runs inside the UML guest:   . "$LAB_DIR/lib.sh"
#
# Topology made by lab_make_gateways (addresses are documentation / private
# ranges and exist only inside the guest's namespaces):
#
#   host-a 10.1.0.2 --- 10.1.0.1 gw-a 192.0.2.1 === 192.0.2.2 gw-b 10.2.0.1 --- 10.2.0.2 host-b
#          (veth)                (veth "wan" on both sides)               (veth)
#
# gw-a and gw-b forward; neither has a route to the other's protected subnet,
# so host-a -> host-b traffic only flows once an IPsec tunnel (with charon's
# routes, table 220) is up.
#
# Every function returns non-zero on failure with a message on stderr; a
# scenario usually runs with `set -euo pipefail` (the Rust tests' lab_sh
# runs its snippets with `set -eo pipefail`), so the functions must work
# under errexit and pipefail: a command whose failure is expected is
# tested (`|| ...`, `if`), and no pipeline ends in a `grep -q` that may
# close the pipe on its writer (SIGPIPE fails the pipeline under pipefail).

LAB_OUT=${LAB_OUT:-$PWD}
LAB_STATE=${LAB_STATE:-/run/lab}        # guest tmpfs: sockets, pid files
CHARON_BIN=${CHARON_BIN:-/usr/lib/ipsec/charon}
# kdf is mandatory in 5.9.8 (PRF+ lives there); kernel-libipsec crashes in UML.
CHARON_PLUGINS=${CHARON_PLUGINS:-"random nonce aes sha1 sha2 hmac gcm pem pkcs1 pkcs8 x509 pubkey revocation openssl kernel-netlink socket-default vici kdf"}
CHARON_LOGLEVELS_DEFAULT="default=1 ike=2 cfg=2 knl=2 net=2 chd=2"

lab_log() { echo "[lab $(cut -d' ' -f1 /proc/uptime)] $*" >&2; }
lab_fail() { echo "[lab] FAILURE: $*" >&2; return 1; }

# lab_wait_for TIMEOUT_S DESCRIPTION CMD [ARGS...]
# Runs CMD every 0.2 s until it succeeds; fails after TIMEOUT_S seconds.
lab_wait_for() {
    local timeout=$1 desc=$2; shift 2
    local end=$(( $(date +%s) + timeout ))
    until "$@" >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge "$end" ]; then
            lab_fail "timed out after ${timeout}s waiting for: $desc"
            return 1
        fi
        sleep 0.2
    done
    lab_log "ok: $desc"
}

# lab_ns NS CMD... : run CMD in namespace NS.
lab_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# lab_veth NS1 IF1 ADDR1 NS2 IF2 ADDR2 : a veth pair between two namespaces.
lab_veth() {
    ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
    ip -n "$1" addr add "$3" dev "$2"
    ip -n "$4" addr add "$6" dev "$5"
    ip -n "$1" link set "$2" up
    ip -n "$4" link set "$5" up
}

# lab_make_gateways : the topology above (namespaces gw-a gw-b host-a host-b).
# Variables GW_A_WAN GW_B_WAN NET_A NET_B HOST_A HOST_B name the addresses.
GW_A_WAN=192.0.2.1 GW_B_WAN=192.0.2.2
# shellcheck disable=SC2034  # used by scenarios
NET_A=10.1.0.0/24 NET_B=10.2.0.0/24
GW_A_LAN=10.1.0.1 GW_B_LAN=10.2.0.1 HOST_A=10.1.0.2 HOST_B=10.2.0.2
lab_make_gateways() {
    local ns
    for ns in gw-a gw-b host-a host-b; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    lab_veth gw-a wan "$GW_A_WAN/24" gw-b wan "$GW_B_WAN/24"
    lab_veth gw-a lan "$GW_A_LAN/24" host-a eth0 "$HOST_A/24"
    lab_veth gw-b lan "$GW_B_LAN/24" host-b eth0 "$HOST_B/24"
    ip -n host-a route add default via "$GW_A_LAN"
    ip -n host-b route add default via "$GW_B_LAN"
    for ns in gw-a gw-b; do
        lab_ns "$ns" sysctl -qw net.ipv4.ip_forward=1
    done
    lab_wait_for 10 "gw-a reaches gw-b over wan" lab_ns gw-a ping -c1 -W1 "$GW_B_WAN"
}

# lab_destroy_gateways : remove the namespaces (and so their interfaces).
lab_destroy_gateways() {
    local ns
    for ns in host-a host-b gw-a gw-b; do ip netns del "$ns" 2>/dev/null || true; done
}

# lab_warm_crypto: instantiates the kernel's AES-GCM ESP transform once
# (an SA in a throwaway namespace). The first SA with an algorithm makes the
# kernel look the template names up, each failed lookup a modprobe process:
# 3-4 s in UML on a loaded machine, inside the daemon's netlink request, so
# a test with short retransmissions saw its first IKE_AUTH answer too late.
# Only AES-GCM: xfrm-netlink's esp_lab needs hmac and chacha20 cold.
# A failed SA add fails the function (it returned the namespace delete's
# status before, so a lab_sh snippet never saw it).
lab_warm_crypto() {
    ip netns add lab-warm || return 1
    if ! ip -n lab-warm xfrm state add src 198.51.100.1 dst 198.51.100.2 proto esp \
        spi 0x100 mode tunnel aead 'rfc4106(gcm(aes))' "0x$(printf '%072d' 0)" 128; then
        ip netns del lab-warm
        lab_fail "warming AES-GCM up"
        return 1
    fi
    ip netns del lab-warm
}

# lab_ping_through SRC_NS DST_ADDR [COUNT] : one-line tunnel check.
lab_ping_through() {
    local n=${3:-3} out
    if out=$(lab_ns "$1" ping -c "$n" -i 0.2 -W 2 "$2" 2>&1); then
        lab_log "ping $1 -> $2: $(echo "$out" | grep 'packets transmitted')"
    else
        lab_fail "ping $1 -> $2 failed: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
    fi
}

# --- charon -----------------------------------------------------------------
# Instance NAME has its state in $LAB_STATE/NAME (run/ = its private /run, with
# the pid file and the VICI socket) and its files in $LAB_OUT/charon-NAME
# (strongswan.conf, swanctl.conf, charon.log, stdout.log).

lab_charon_dir() { echo "$LAB_OUT/charon-$1"; }
lab_charon_vici() { echo "unix://$LAB_STATE/$1/run/vici"; }

# lab_charon_start NAME NS SWANCTL_CONF [LOGLEVELS] [EXTRA_CHARON_CONF]
#   LOGLEVELS: "default=1 ike=4 enc=3 ..." (groups of charon's filelog);
#   EXTRA_CHARON_CONF: lines added inside charon { } (one setting per line).
# Starts charon in NS with its own mount namespace, waits for VICI, and loads
# SWANCTL_CONF (connections and secrets) with swanctl --load-all.
lab_charon_start() {
    local name=$1 ns=$2 conf=$3 levels=${4:-$CHARON_LOGLEVELS_DEFAULT} extra=${5:-}
    local dir state lv
    dir=$(lab_charon_dir "$name"); state=$LAB_STATE/$name
    mkdir -p "$dir" "$state/run"
    cp "$conf" "$dir/swanctl.conf"
    # strongswan.conf's parser reads a value to the end of the line: keep
    # every closing brace on its own line. flush_line or the log is lost on halt.
    {
        echo "charon {"
        echo "    load = $CHARON_PLUGINS"
        [ -n "$extra" ] && printf '%s\n' "$extra"
        echo "    plugins {"
        echo "        vici {"
        echo "            socket = unix:///run/vici"
        echo "        }"
        echo "    }"
        echo "    filelog {"
        echo "        lab {"
        echo "            path = $dir/charon.log"
        echo "            time_format = %H:%M:%S"
        echo "            ike_name = yes"
        echo "            append = no"
        echo "            flush_line = yes"
        for lv in $levels; do echo "            ${lv%%=*} = ${lv#*=}"; done
        echo "        }"
        echo "    }"
        echo "    syslog {"
        echo "        daemon {"
        echo "            default = -1"
        echo "        }"
        echo "    }"
        echo "}"
        echo "swanctl {"
        echo "    socket = $(lab_charon_vici "$name")"
        echo "}"
    } > "$dir/strongswan.conf"
    # Private /run (charon's pid file is /run/charon.pid): bind the
    # instance's run/ over it, so the VICI socket is reachable from outside
    # at $state/run/vici.
    STRONGSWAN_CONF=$dir/strongswan.conf ip netns exec "$ns" \
        unshare -m sh -c "mount --make-rprivate / && mount --bind '$state/run' /run && exec '$CHARON_BIN'" \
        > "$dir/stdout.log" 2>&1 &
    echo $! > "$state/launcher.pid"
    lab_wait_for 30 "charon $name VICI socket" test -S "$state/run/vici"
    lab_swanctl "$name" --load-all --file "$dir/swanctl.conf" > "$dir/load.log" 2>&1 ||
        { cat "$dir/load.log" >&2; lab_fail "swanctl --load-all for $name"; return 1; }
    lab_log "charon $name running in $ns (pid $(cat "$state/run/charon.pid" 2>/dev/null))"
}

# lab_swanctl NAME ARGS... : swanctl against instance NAME (command first).
lab_swanctl() {
    local name=$1 cmd=$2; shift 2
    STRONGSWAN_CONF=$(lab_charon_dir "$name")/strongswan.conf \
        swanctl "$cmd" --uri "$(lab_charon_vici "$name")" "$@"
}

# lab_charon_stop NAME : SIGTERM, wait up to 10 s, then SIGKILL.
lab_charon_stop() {
    local state=$LAB_STATE/$1 pid
    pid=$(cat "$state/run/charon.pid" 2>/dev/null) || pid=$(cat "$state/launcher.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$state/run/vici" "$state/run/charon.pid"
}

# lab_child_installed NAME CHILD : true once swanctl lists CHILD as INSTALLED.
lab_child_installed() {
    local sas
    sas=$(lab_swanctl "$1" --list-sas 2>/dev/null) || return 1
    grep -qE "^ *$2: #[0-9]+, reqid [0-9]+, INSTALLED" <<<"$sas"
}

# lab_no_ike_sa NAME [IKE] : true when NAME has no established IKE SA (named IKE).
lab_no_ike_sa() {
    local sas
    sas=$(lab_swanctl "$1" --list-sas ${2:+--ike "$2"} 2>/dev/null) || return 0
    ! grep -q ESTABLISHED <<<"$sas"
}

# lab_initiate NAME CHILD [TIMEOUT] : initiate CHILD and wait until installed.
lab_initiate() {
    local to=${3:-30} dir
    dir=$(lab_charon_dir "$1")
    lab_swanctl "$1" --initiate --child "$2" --timeout "$to" >> "$dir/initiate.log" 2>&1 ||
        { tail -n 20 "$dir/initiate.log" >&2; lab_fail "initiate $2 on $1"; return 1; }
    lab_wait_for "$to" "child $2 installed on $1" lab_child_installed "$1" "$2"
}

# --- capture and collection ----------------------------------------------------

# lab_capture_start TAG NS IFACE FILE [FILTER] : tcpdump -w FILE in NS.
lab_capture_start() {
    local tag=$1 ns=$2 ifc=$3 file=$4 filter=${5:-udp port 500 or udp port 4500}
    mkdir -p "$LAB_STATE/cap"
    # A plain command in the background (no function, no subshell): $! is
    # then ip's pid, which execs tcpdump, so the pid file names tcpdump.
    # --immediate-mode: otherwise libpcap holds packets in the TPACKET_V3
    # ring until a block times out, and those still there at SIGTERM are lost.
    ip netns exec "$ns" tcpdump -Z root -U --immediate-mode -n -s 0 -i "$ifc" -w "$file" "$filter" \
        > "$file.tcpdump.log" 2>&1 &
    echo $! > "$LAB_STATE/cap/$tag.pid"
    echo "$file" > "$LAB_STATE/cap/$tag.file"
    lab_wait_for 15 "tcpdump $tag listening" grep -q 'listening on' "$file.tcpdump.log"
}

# lab_capture_stop TAG : stop tcpdump cleanly (SIGTERM: it flushes the file;
# SIGINT is ignored by background jobs of a script) and fail if it wrote
# fewer packets than its filter matched.
lab_capture_stop() {
    local pid file log cap rcv
    pid=$(cat "$LAB_STATE/cap/$1.pid" 2>/dev/null) || return 0
    file=$(cat "$LAB_STATE/cap/$1.file")
    rm -f "$LAB_STATE/cap/$1.pid" "$LAB_STATE/cap/$1.file"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { lab_fail "tcpdump $1 (pid $pid) did not stop"; return 1; }
    log=$file.tcpdump.log
    # A missing log is the failure below, with its message, not errexit's.
    cap=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$log") || cap=
    rcv=$(sed -n 's/^\([0-9]*\) packets\{0,1\} received by filter.*/\1/p' "$log") || rcv=
    if [ -z "$cap" ] || [ "$cap" != "$rcv" ]; then
        lab_fail "tcpdump $1 wrote ${cap:-?} packets of ${rcv:-?} matched (see $log)"
        return 1
    fi
    lab_log "tcpdump $1: $cap packets in $file"
}

# lab_collect NS DESTFILE : xfrm state/policy and routes of NS, for the record.
lab_collect() {
    {
        echo "### ip xfrm state ($1)";  lab_ns "$1" ip -s xfrm state
        echo "### ip xfrm policy ($1)"; lab_ns "$1" ip xfrm policy
        # grep -v fails when it filters every line out: not a failure here.
        echo "### ip route table all ($1)"; lab_ns "$1" ip route show table all |
            { grep -v '^local\|^broadcast\|ff00::/8\|fe80::/64' || true; }
    } > "$2" 2>&1
}

# lab_swanctl_psk_conf FILE LOCAL_ID REMOTE_ID LOCAL_ADDR REMOTE_ADDR LOCAL_TS REMOTE_TS IKE ESP
# A swanctl.conf with one PSK connection "lab" and one tunnel child "net",
# no rekeying; the secret is $PSK shared between $ID_A and $ID_B.
lab_swanctl_psk_conf() {
    cat > "$1" <<EOC
connections {
    lab {
        version = 2
        local_addrs = $4
        remote_addrs = $5
        proposals = $8
        rekey_time = 0
        local {
            auth = psk
            id = $2
        }
        remote {
            auth = psk
            id = $3
        }
        children {
            net {
                local_ts = $6
                remote_ts = $7
                esp_proposals = $9
                mode = tunnel
                rekey_time = 0
                start_action = none
            }
        }
    }
}
secrets {
    ike-lab {
        id-a = $ID_A
        id-b = $ID_B
        secret = "$PSK"
    }
}
EOC
}
