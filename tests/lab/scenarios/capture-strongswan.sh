# capture-strongswan.sh -- scenario (runs inside UML via uml-run.sh).
# For each suite: fresh charons in gw-a (initiator) and gw-b (responder), PSK
# auth with FQDN IDs; tcpdump of UDP 500/4500 on gw-a's wan; initiate the
# child, ping host-a -> host-b through it, terminate the IKE SA from gw-a
# (INFORMATIONAL delete), stop everything. Output: $LAB_OUT/<suite>/
# (ike.pcap, charon-gw-a/charon.log, charon-gw-b/charon.log, xfrm-*.txt).
#
# SUITES (from the environment, optional): "ike_proposal/esp_proposal ..."
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$LAB_DIR/lib.sh"

SUITES=${SUITES:-"aes256gcm16-prfsha256-x25519/aes256gcm16 aes128-sha256-modp2048/aes128-sha256 chacha20poly1305-prfsha384-ecp384/chacha20poly1305"}
PSK=${PSK:-iked-lab-psk-not-a-secret-0123456789}
ID_A=gw-a.example.org ID_B=gw-b.example.org
# ike=4 makes charon log the DH secret, SKEYSEED and SK_*; chd=4 the child keys.
# net=3 dumps every received datagram (cross-checked against the pcap); enc=1
# names the payloads of each message (enc=3 adds per-payload dumps, ~10x the log).
LEVELS=${CAPTURE_LEVELS:-"default=1 ike=4 chd=4 net=3 enc=1 cfg=1 knl=2 mgr=1 job=1 lib=1"}


lab_log "strongSwan: $($CHARON_BIN --version 2>&1 | head -n1)"
lab_make_gateways
rc=0
for suite in $SUITES; do
    ike=${suite%%/*} esp=${suite#*/}
    out=$LAB_OUT/$ike
    rm -rf "$out"; mkdir -p "$out"
    lab_log "=== suite $ike / $esp"
    lab_swanctl_psk_conf "$out/swanctl-a.conf" "$ID_A" "$ID_B" "$GW_A_WAN" "$GW_B_WAN" "$NET_A" "$NET_B" "$ike" "$esp"
    lab_swanctl_psk_conf "$out/swanctl-b.conf" "$ID_B" "$ID_A" "$GW_B_WAN" "$GW_A_WAN" "$NET_B" "$NET_A" "$ike" "$esp"
    printf 'ike_proposal = %s\nesp_proposal = %s\npsk = %s\nid_i = %s\nid_r = %s\n' \
        "$ike" "$esp" "$PSK" "$ID_A" "$ID_B" > "$out/scenario.txt"
    # errexit is ignored in a subshell on the left of `||` (a failed
    # initiate or ping went on to write "ping = ok" and the suite passed):
    # the subshell sets -e itself, outside any such context.
    set +e
    (
        set -e
        LAB_OUT=$out
        lab_capture_start ike gw-a wan "$out/ike.pcap"
        lab_charon_start gw-b gw-b "$out/swanctl-b.conf" "$LEVELS"
        lab_charon_start gw-a gw-a "$out/swanctl-a.conf" "$LEVELS"
        lab_initiate gw-a net 30
        lab_wait_for 10 "child installed on responder" lab_child_installed gw-b net
        lab_ping_through host-a "$HOST_B" 3
        echo "ping = ok" >> "$out/scenario.txt"
        lab_collect gw-a "$out/xfrm-gw-a.txt"
        lab_collect gw-b "$out/xfrm-gw-b.txt"
        lab_swanctl gw-a --terminate --ike lab --timeout 10 > "$out/terminate.log" 2>&1
        lab_wait_for 10 "responder has no IKE SA" lab_no_ike_sa gw-b lab
        sleep 0.5
    )
    suite_rc=$?
    set -e
    [ "$suite_rc" -eq 0 ] || { rc=1; lab_log "suite $ike FAILED"; }
    LAB_OUT=$out lab_capture_stop ike || rc=1
    lab_charon_stop gw-a
    lab_charon_stop gw-b
    rm -rf "${LAB_STATE:?}"/gw-a "${LAB_STATE:?}"/gw-b
done
lab_destroy_gateways
exit $rc
