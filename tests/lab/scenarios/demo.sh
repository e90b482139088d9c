# demo.sh -- scenario (inside UML via uml-run.sh, started by scripts/demo.sh):
# two gateways each running iked with a YAML configuration, `ikectl up` from
# gw-a, ping host-a -> host-b through the tunnel (carried by the routes iked
# installs in table 220), the ESP counters rising, `ikectl status` on both
# sides, `ikectl down`, and nothing left in either kernel.
# Needs IKED and IKECTL (paths of the binaries) in the environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$LAB_DIR/lib.sh"
: "${IKED:?path of iked}" "${IKECTL:?path of ikectl}"

step() { printf '\n### %s\n' "$*"; }
# run DISPLAY CMD...: prints "$ DISPLAY", runs CMD.
run() { printf '$ %s\n' "$1"; shift; "$@"; }

PSK=demo-psk-not-a-secret

# conf NAME LOCAL REMOTE LOCAL_TS REMOTE_TS: the YAML configuration of a gateway.
conf() {
    cat > "$LAB_OUT/$1.yaml" <<EOC
connections:
  site:
    local_addrs: [$2]
    remote_addrs: [$3]
    proposals: [aes256gcm16-prfsha256-x25519]
    local:  { auth: psk, id: $1.example.org }
    remote: { auth: psk, id: $6.example.org }
    children:
      lan:
        local_ts: [$4]
        remote_ts: [$5]
        esp_proposals: [aes256gcm16]
secrets:
  ike:
    - { ids: [$1.example.org, $6.example.org], secret: "$PSK" }
EOC
    chmod 600 "$LAB_OUT/$1.yaml"
}

sock() { echo "$LAB_STATE/iked-$1.sock"; }
ctl() { local gw=$1; shift; "$IKECTL" --control "$(sock "$gw")" "$@"; }

# esp_packets NS: the packets counted by the ESP SAs of NS's kernel.
esp_packets() {
    lab_ns "$1" ip -s xfrm state |
        awk '/lifetime current:/ { getline; sub(/\(packets\)/, "", $2); s += $2 } END { print s + 0 }'
}

# stop_ikeds: SIGTERM to the iked started here (also when a step fails).
stop_ikeds() {
    local f
    for f in "$LAB_STATE"/iked-gw-*.pid; do
        [ -f "$f" ] || continue
        kill -TERM "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
    wait 2>/dev/null || true
}
mkdir -p "$LAB_STATE"
trap stop_ikeds EXIT
lab_make_gateways
conf gw-a "$GW_A_WAN" "$GW_B_WAN" "$NET_A" "$NET_B" gw-b
conf gw-b "$GW_B_WAN" "$GW_A_WAN" "$NET_B" "$NET_A" gw-a

step "the lab: host-a $HOST_A -- gw-a $GW_A_WAN === $GW_B_WAN gw-b -- host-b $HOST_B"
if lab_ns host-a ping -c1 -W1 "$HOST_B" >/dev/null 2>&1; then
    lab_fail "host-a reaches host-b without a tunnel"
fi
echo "no tunnel yet: host-a cannot reach host-b (gw-a has no route to $NET_B)"

step "gw-a's configuration ($LAB_OUT/gw-a.yaml)"
sed 's/secret: "[^"]*"/secret: "..."/' "$LAB_OUT/gw-a.yaml"

step "start iked on gw-a and gw-b"
for gw in gw-a gw-b; do
    ip netns exec "$gw" "$IKED" --config "$LAB_OUT/$gw.yaml" --control "$(sock "$gw")" \
        2> "$LAB_OUT/iked-$gw.log" &
    echo "$!" > "$LAB_STATE/iked-$gw.pid"
done
for gw in gw-a gw-b; do
    lab_wait_for 20 "iked's control socket on $gw" test -S "$(sock "$gw")"
done
echo "iked runs on both gateways (logs: $LAB_OUT/iked-gw-*.log)"

step "gw-a: ikectl up site"
run "ikectl up site --timeout 30" ctl gw-a up site --timeout 30

step "gw-a: the route iked installed (table 220) and its rule"
run "ip route show table 220" lab_ns gw-a ip route show table 220
printf '$ ip rule show | grep "lookup 220"\n'
lab_ns gw-a ip rule show | grep 'lookup 220'

step "ping host-a -> host-b through the tunnel"
before=$(esp_packets gw-a)
run "ping -c 5 -i 0.2 $HOST_B   (in host-a)" lab_ns host-a ping -c 5 -i 0.2 "$HOST_B"

step "gw-a: ESP SAs with their counters (ip -s xfrm state)"
lab_ns gw-a ip -s xfrm state | grep -E '^src|proto esp|aead|lifetime current|bytes'
after=$(esp_packets gw-a)
[ "$after" -ge $((before + 10)) ] || lab_fail "the ESP packet counters did not rise ($before -> $after)"
echo "ESP packets counted by gw-a's kernel: $before before the ping, $after after"

step "gw-a: ikectl status"
run "ikectl status" ctl gw-a status
step "gw-b: ikectl status"
run "ikectl status" ctl gw-b status

step "gw-a: ikectl down site"
run "ikectl down site" ctl gw-a down site
sleep 0.5

step "nothing left: SAs, policies, routes on both gateways"
for gw in gw-a gw-b; do
    lab_wait_for 10 "$gw's SAs gone" sh -c "[ -z \"\$(ip -n $gw xfrm state)\" ]"
    states=$(lab_ns "$gw" ip xfrm state | grep -c '^src' || true)
    policies=$(lab_ns "$gw" ip xfrm policy | grep -c 'tmpl' || true)
    routes=$(lab_ns "$gw" ip route show table all proto 157 | wc -l)
    rules=$(lab_ns "$gw" ip rule show | grep -c 'lookup 220' || true)
    echo "$gw: $states SAs, $policies IPsec policies, $routes routes of iked, $rules rules for table 220"
    [ "$states$policies$routes$rules" = 0000 ] || lab_fail "$gw: kernel state left after ikectl down"
done
if lab_ns host-a ping -c1 -W1 "$HOST_B" >/dev/null 2>&1; then
    lab_fail "host-a still reaches host-b after ikectl down"
fi
echo "host-a cannot reach host-b any more"

step "gw-a: what iked logged"
grep -v ' DEBUG ' "$LAB_OUT/iked-gw-a.log" | sed 's/^[^ ]* *//' | cut -c1-160

stop_ikeds
lab_destroy_gateways
printf '\ndemo: done\n'
