# demo-strongswan.sh -- scenario (inside UML via uml-run.sh): two gateways, a PSK tunnel
# between them, ping between the protected subnets through ESP, and what the
# kernel and the daemons say about it.
#
# Both gateways run strongSwan's charon, the peer iked replaces and talks to
# (scripts/demo-strongswan.sh; scripts/demo.sh runs iked on both sides).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$LAB_DIR/lib.sh"

PSK=demo-psk-not-a-secret ID_A=gw-a.example.org ID_B=gw-b.example.org
IKE=aes256gcm16-prfsha256-x25519 ESP=aes256gcm16

lab_make_gateways
lab_swanctl_psk_conf "$LAB_OUT/swanctl-a.conf" "$ID_A" "$ID_B" "$GW_A_WAN" "$GW_B_WAN" "$NET_A" "$NET_B" "$IKE" "$ESP"
lab_swanctl_psk_conf "$LAB_OUT/swanctl-b.conf" "$ID_B" "$ID_A" "$GW_B_WAN" "$GW_A_WAN" "$NET_B" "$NET_A" "$IKE" "$ESP"
lab_charon_start gw-b gw-b "$LAB_OUT/swanctl-b.conf"
lab_charon_start gw-a gw-a "$LAB_OUT/swanctl-a.conf"
lab_initiate gw-a net 30
lab_wait_for 10 "child installed on gw-b" lab_child_installed gw-b net

echo
echo "### ping host-a ($HOST_A) -> host-b ($HOST_B) through the tunnel"
lab_ns host-a ping -c 5 -i 0.2 "$HOST_B"
echo
echo "### gw-a: IKE and Child SAs (swanctl --list-sas)"
lab_swanctl gw-a --list-sas
echo
echo "### gw-a: kernel SAs with their ESP counters (ip -s xfrm state)"
lab_ns gw-a ip -s xfrm state | grep -E '^src|proto esp|aead|lifetime current|bytes'
out=$(lab_ns gw-a ip -s xfrm state)
pkts=$(echo "$out" | awk '/lifetime current:/ { getline; sub(/\(packets\)/, "", $2); s += $2 } END { print s + 0 }')
[ "${pkts:-0}" -gt 0 ] || lab_fail "the ESP packet counters did not rise"
echo
echo "demo: tunnel up, $pkts ESP packets counted by gw-a's kernel"
lab_swanctl gw-a --terminate --ike lab --timeout 10 >/dev/null 2>&1
lab_charon_stop gw-a
lab_charon_stop gw-b
lab_destroy_gateways
