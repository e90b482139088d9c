# smoke.sh -- scenario: the lab itself works. Modules for XFRM/ESP are loaded,
# the gateway topology comes up, gw-a reaches gw-b, and host-a can NOT reach
# host-b while no tunnel is up (so a later ping proves the tunnel).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$LAB_DIR/lib.sh"
grep -q '^xfrm_user ' /proc/modules || lab_fail "xfrm_user not loaded"
grep -q '^esp4 ' /proc/modules || lab_fail "esp4 not loaded"
lab_make_gateways
lab_ping_through host-a "$GW_A_LAN" 1
if lab_ns host-a ping -c1 -W1 "$HOST_B" >/dev/null 2>&1; then
    lab_fail "host-a reaches host-b without a tunnel"
fi
lab_log "host-a -> host-b blocked without a tunnel, as it should be"
# A manual AES-GCM SA proves the on-demand crypto module loading works.
lab_ns gw-a ip xfrm state add src "$GW_A_WAN" dst "$GW_B_WAN" proto esp spi 0x1000 mode tunnel \
    aead 'rfc4106(gcm(aes))' 0x0102030405060708090a0b0c0d0e0f1011121314 128
lab_ns gw-a ip xfrm state | grep -q 'rfc4106(gcm(aes))'
lab_log "AES-GCM SA installed"
lab_destroy_gateways
