#!/usr/bin/env bash
# Writes the `cert` target's seeds into fuzz/corpus/cert/ with openssl: a
# CA, an intermediate and an end entity (ECDSA P-256 and RSA), a CRL of
# the CA revoking one certificate, in PEM and DER, and the bundles the
# target validates (CA first, end entity last). Valid for ten years from
# the day it runs; the target validates at 2028-01-01.
set -euo pipefail
out="$(cd "$(dirname "$0")/.." && pwd)/corpus/cert"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

cat >ca.cnf <<'CNF'
[ca]
default_ca = ca
[ca]
database = index.txt
new_certs_dir = .
serial = serial
crlnumber = crlnumber
default_md = sha256
default_crl_days = 3650
policy = any
[any]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_int]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://crl.example.org/ca.crl
nameConstraints = permitted;DNS:example.org
certificatePolicies = 1.3.6.1.4.1.36906.1.1
[v3_ee]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, 1.3.6.1.5.5.7.3.17
subjectAltName = DNS:moon.example.org, IP:192.0.2.1, email:moon@example.org
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
touch index.txt
echo 01 >serial
echo 01 >crlnumber

for kind in ec rsa; do
  if [ "$kind" = ec ]; then
    gen() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  else
    gen() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
  fi
  gen ca.key
  gen int.key
  gen ee.key
  openssl req -new -x509 -key ca.key -subj "/C=CH/O=iked fuzz/CN=Fuzz $kind CA" -days 3650 \
    -config ca.cnf -extensions v3_ca -out ca.pem
  openssl req -new -key int.key -subj "/C=CH/O=iked fuzz/CN=Fuzz $kind Intermediate" -out int.csr
  openssl x509 -req -in int.csr -CA ca.pem -CAkey ca.key -set_serial 2 -days 3650 \
    -extfile ca.cnf -extensions v3_int -out int.pem 2>/dev/null
  openssl req -new -key ee.key -subj "/C=CH/O=iked fuzz/CN=moon.example.org" -out ee.csr
  openssl x509 -req -in ee.csr -CA int.pem -CAkey int.key -set_serial 3 -days 3650 \
    -extfile ca.cnf -extensions v3_ee -out ee.pem 2>/dev/null
  # A CRL of the CA that revokes the intermediate.
  printf 'R\t361231000000Z\t261206000000Z\t02\tunknown\t/CN=x\n' >index.txt
  openssl ca -config ca.cnf -gencrl -keyfile ca.key -cert ca.pem -out ca.crl 2>/dev/null
  : >index.txt

  cat ca.pem int.pem ee.pem >"$out/$kind-chain.pem"
  cat ca.pem ca.crl int.pem ee.pem >"$out/$kind-chain-crl.pem"
  cat ca.pem ee.pem >"$out/$kind-chain-missing-intermediate.pem"
  openssl x509 -in ee.pem -outform DER -out "$out/$kind-ee.der"
  openssl x509 -in ca.pem -outform DER -out "$out/$kind-ca.der"
  openssl crl -in ca.crl -outform DER -out "$out/$kind-ca.crl.der"
  openssl pkey -in ee.key -pubout -out "$out/$kind-ee.pub.pem"
  openssl pkey -in ee.key -pubout -outform DER -out "$out/$kind-ee.pub.der"
  cp ee.key "$out/$kind-ee.key.pem"
done
