#!/bin/bash
# pki.sh OUTDIR -- the certificate lab's test PKI, made afresh at each run
# with openssl (nothing with an expiry is committed). Valid certificates
# last 2 days from now; CRLs are good for a day.
#
#   root          ECDSA P-384, self-signed: the trust anchor of both gateways;
#                 issues gw-a's end-entity certificates
#   int           RSA-3072 intermediate under root: issues gw-b's, which
#                 gw-b sends with it (a gw-a that holds only root needs the
#                 intermediate from gw-b's CERT payloads); its CRL
#                 (crl/int.crl, PEM) revokes revoked-file
#   int-http      ECDSA P-256 intermediate under root; its certificates
#                 carry a CRL distribution point http://$PKI_CRL_HOST/int-http.crl,
#                 where the lab serves crl/int-http.crl (DER), revoking revoked-http
#   other-root    ECDSA P-256 self-signed root nobody trusts
#
# End entities, for gw-a (by root) and gw-b (by int) (SIDE/KIND.pem,
# SIDE/KIND.key, PKCS#8):
#   rsa3072  RSA-3072
#   rsapss   RSA-3072, gw-b's signed by int with RSASSA-PSS (for `auth = rsa/pss`)
#   ecdsa256 ECDSA P-256      ecdsa384 ECDSA P-384      ed25519 Ed25519
# and for gw-b only: good-http, ECDSA P-256 by int-http (with the
# distribution point, not revoked), and certificates to be refused (P-256):
#   expired (ended yesterday), notyet (starts in 10 days), untrusted (by
#   other-root), revoked-file (by int, in crl/int.crl), revoked-http (by
#   int-http, in the served CRL). (A certificate with an unknown critical
#   extension is not made: charon refuses to load one, so it cannot present
#   it; the x509 unit tests cover iked's refusal.)
# Subjects: C=CH, O=iked lab, CN=SIDE.KIND.example; subjectAltName
# DNS:SIDE.KIND.example and email:SIDE@KIND.example.
#
# Every CA and CRL has subject/authority key identifiers (charon uses a
# CRL only through the issuer's subjectKeyIdentifier, see
# /work/shared/kernel-lab.md).
set -euo pipefail

OUT=${1:?usage: pki.sh OUTDIR}
CRL_HOST=${PKI_CRL_HOST:-192.0.2.80:8080}
rm -rf "$OUT"
mkdir -p "$OUT"/{gw-a,gw-b,crl,ca}
cd "$OUT"

now_minus() { date -u -d "$1" +%Y%m%d%H%M%SZ; }

# key FILE TYPE
key() {
    case $2 in
    rsa3072) openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$1" ;;
    p256) openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" ;;
    p384) openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$1" ;;
    ed25519) openssl genpkey -quiet -algorithm ED25519 -out "$1" ;;
    *) echo "pki.sh: unknown key type $2" >&2; return 1 ;;
    esac
}

# ca_conf NAME: an `openssl ca` set-up for CA NAME (ca/NAME/).
ca_conf() {
    local d=ca/$1
    mkdir -p "$d/new"
    : > "$d/index.txt"
    echo 1000 > "$d/serial"
    echo 1000 > "$d/crlnumber"
    cat > "$d/ca.cnf" <<EOF
[ ca ]
default_ca = this
[ this ]
dir = $OUT/$d
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = $OUT/$1.pem
private_key = $OUT/$1.key
default_md = sha256
default_days = 2
default_crl_days = 1
policy = any
unique_subject = no
copy_extensions = none
crl_extensions = crl_ext
[ any ]
countryName = optional
organizationName = optional
commonName = supplied
[ crl_ext ]
authorityKeyIdentifier = keyid:always
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_ee ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = \${ENV::PKI_SAN}
[ v3_ee_cdp ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = \${ENV::PKI_SAN}
crlDistributionPoints = URI:http://$CRL_HOST/$1.crl
EOF
}
export PKI_SAN=email:unused@example.invalid

# sign CA SUBJECT KEYFILE OUTFILE EXT [openssl ca options...]
sign() {
    local ca=$1 subj=$2 keyf=$3 out=$4 ext=$5
    shift 5
    openssl req -new -key "$keyf" -subj "$subj" -config "ca/$ca/ca.cnf" -out "$out.csr"
    openssl ca -batch -notext -config "ca/$ca/ca.cnf" -extensions "$ext" \
        -in "$out.csr" -out "$out" "$@" 2>ca/$ca/last.log ||
        { cat "ca/$ca/last.log" >&2; return 1; }
    rm -f "$out.csr"
}

# Roots (self-signed through `openssl ca -selfsign`, so the same extensions).
for r in root:p384 other-root:p256; do
    name=${r%%:*}
    key "$name.key" "${r#*:}"
    ca_conf "$name"
    sign "$name" "/C=CH/O=iked lab/CN=iked lab $name" "$name.key" "$name.pem" v3_ca -selfsign -days 3
done
# Intermediates under root.
for i in int:rsa3072 int-http:p256; do
    name=${i%%:*}
    key "$name.key" "${i#*:}"
    ca_conf "$name"
    sign root "/C=CH/O=iked lab/CN=iked lab $name" "$name.key" "$name.pem" v3_ca -days 3
done

# ee SIDE KIND KEYTYPE CA EXT [options...]
ee() {
    local side=$1 kind=$2 kt=$3 ca=$4 ext=$5
    shift 5
    key "$side/$kind.key" "$kt"
    PKI_SAN="DNS:$side.$kind.example, email:$side@$kind.example" \
        sign "$ca" "/C=CH/O=iked lab/CN=$side.$kind.example" "$side/$kind.key" "$side/$kind.pem" "$ext" "$@"
}

ee gw-a rsa3072 rsa3072 root v3_ee -md sha384
ee gw-a rsapss rsa3072 root v3_ee
ee gw-a ecdsa256 p256 root v3_ee
ee gw-a ecdsa384 p384 root v3_ee -md sha384
ee gw-a ed25519 ed25519 root v3_ee -md sha512
ee gw-b rsa3072 rsa3072 int v3_ee
ee gw-b rsapss rsa3072 int v3_ee -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:-1
ee gw-b ecdsa256 p256 int v3_ee
ee gw-b ecdsa384 p384 int v3_ee -md sha384
ee gw-b ed25519 ed25519 int v3_ee
ee gw-b good-http p256 int-http v3_ee_cdp
ee gw-b expired p256 int v3_ee -startdate "$(now_minus '10 days ago')" -enddate "$(now_minus '1 day ago')"
ee gw-b notyet p256 int v3_ee -startdate "$(now_minus '10 days')" -enddate "$(now_minus '20 days')"
ee gw-b untrusted p256 other-root v3_ee
ee gw-b revoked-file p256 int v3_ee
ee gw-b revoked-http p256 int-http v3_ee_cdp

openssl ca -batch -config ca/int/ca.cnf -revoke gw-b/revoked-file.pem -crl_reason keyCompromise 2>/dev/null
openssl ca -batch -config ca/int-http/ca.cnf -revoke gw-b/revoked-http.pem -crl_reason keyCompromise 2>/dev/null
openssl ca -batch -config ca/int/ca.cnf -gencrl -out crl/int.crl 2>/dev/null
openssl ca -batch -config ca/int-http/ca.cnf -gencrl -out crl/int-http.pem 2>/dev/null
openssl crl -in crl/int-http.pem -outform DER -out crl/int-http.crl
rm -f crl/int-http.pem

# Checks: each chain verifies (or does not) as intended.
v() { openssl verify -CAfile root.pem -untrusted int.pem -untrusted int-http.pem "$@" 2>&1; }
for c in gw-a/{rsa3072,rsapss,ecdsa256,ecdsa384,ed25519} gw-b/{rsa3072,rsapss,ecdsa256,ecdsa384,ed25519,good-http}; do
    v "$c.pem" > /dev/null || { v "$c.pem" >&2; exit 1; }
done
for bad in expired notyet untrusted; do
    if v "gw-b/$bad.pem" > /dev/null; then echo "pki.sh: gw-b/$bad.pem verifies" >&2; exit 1; fi
done
if v -crl_check -CRLfile crl/int.crl gw-b/revoked-file.pem > /dev/null; then
    echo "pki.sh: revoked-file.pem is not revoked" >&2; exit 1
fi
openssl crl -inform DER -in crl/int-http.crl -noout -text | grep -q 'Authority Key Identifier' ||
    { echo "pki.sh: the CRL has no authorityKeyIdentifier" >&2; exit 1; }
chmod 600 ./*.key gw-a/*.key gw-b/*.key
echo "pki.sh: PKI in $OUT"
