#!/bin/bash
# bench-pki.sh OUTDIR N KEYTYPE -- certificates for the tunnel benchmark
# with certificate authentication (tests/lab/scenarios/bench-tunnels.sh,
# BENCH_AUTH): a CA of KEYTYPE (ecdsa: P-256, rsa: RSA-3072), one key per
# side (OUTDIR/a.key, OUTDIR/b.key) and N certificates per side
# (OUTDIR/a/a<k>.pem with subject CN=a<k>.example and subjectAltName
# DNS:a<k>.example, the same for b), valid for 2 days from now. Made at
# each run; nothing with an expiry is committed.
set -euo pipefail
OUT=${1:?usage: bench-pki.sh OUTDIR N ecdsa|rsa}
N=${2:?N}
case ${3:?keytype} in
ecdsa) KEYOPT=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) ;;
rsa) KEYOPT=(-algorithm RSA -pkeyopt rsa_keygen_bits:3072) ;;
*) echo "bench-pki.sh: key type ecdsa or rsa" >&2; exit 2 ;;
esac
rm -rf "$OUT"
mkdir -p "$OUT/a" "$OUT/b"
cd "$OUT"
for k in ca a b; do openssl genpkey -quiet "${KEYOPT[@]}" -out "$k.key"; done
chmod 600 ./*.key
openssl req -new -x509 -key ca.key -subj "/O=iked bench/CN=bench ca" -days 2 -out ca.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
# Two openssl processes at a time (the machine has two cores).
for side in a b; do
    for ((k = 0; k < N; k++)); do echo "$side $k"; done
done | xargs -P 2 -n 2 sh -c '
    openssl req -new -key "$0.key" -subj "/O=iked bench/CN=$0$1.example" -days 2 \
        -CA ca.pem -CAkey ca.key -out "$0/$0$1.pem" \
        -addext "subjectAltName=DNS:$0$1.example" -addext "basicConstraints=CA:FALSE" \
        -addext "keyUsage=critical,digitalSignature" 2>/dev/null'
[ "$(find a b -name '*.pem' | wc -l)" = $((2 * N)) ] || { echo "bench-pki.sh: certificates missing" >&2; exit 1; }
openssl verify -CAfile ca.pem "a/a$((N - 1)).pem" > /dev/null
