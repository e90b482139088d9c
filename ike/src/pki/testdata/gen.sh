#!/usr/bin/env bash
# Made the committed test vectors of ike::pki (keys and signatures don't
# expire, so they were generated once; the unit tests only read them).
# Run from this folder with OpenSSL 3: ./gen.sh > vectors.txt
set -euo pipefail
pass=iked-test-pass
printf 'iked signature test message\n' > msg.bin

openssl genrsa -traditional -out rsa1024.pem 1024 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa2048.p8.pem 2>/dev/null
openssl genrsa -traditional -out rsa3072.pem 3072 2>/dev/null
openssl genrsa -traditional -out rsa4608.pem 4608 2>/dev/null
openssl genrsa -traditional -3 -out rsa2048e3.pem 2048 2>/dev/null
openssl ecparam -name prime256v1 -genkey -out p256.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.p8.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out p521.plain.pem
openssl genpkey -algorithm ED25519 -out ed25519.p8.pem
openssl genpkey -algorithm ED448 -out ed448.p8.pem

# Other encodings of the same keys.
openssl rsa -in rsa1024.pem -pubout -out rsa1024.pub.pem 2>/dev/null
openssl rsa -in rsa2048.p8.pem -traditional -outform DER -out rsa2048.pkcs1.der 2>/dev/null
openssl rsa -in rsa2048.p8.pem -pubout -out rsa2048.pub.pem 2>/dev/null
openssl rsa -in rsa2048.p8.pem -RSAPublicKey_out -out rsa2048.pkcs1pub.pem 2>/dev/null
openssl rsa -in rsa2048.p8.pem -RSAPublicKey_out -outform DER -out rsa2048.pkcs1pub.der 2>/dev/null
openssl pkcs8 -topk8 -in rsa2048.p8.pem -v2 aes-256-cbc -v2prf hmacWithSHA256 -passout pass:$pass -out rsa2048.enc.pem
openssl rsa -in rsa2048.p8.pem -traditional -aes256 -passout pass:$pass -out rsa2048.legacy-enc.pem 2>/dev/null
openssl ec -in p256.pem -aes128 -passout pass:$pass -out p256.legacy-aes128.pem 2>/dev/null
openssl rsa -in rsa3072.pem -traditional -des3 -passout pass:$pass -out rsa3072.legacy-des3.pem 2>/dev/null
openssl ec -in p256.pem -outform DER -out p256.sec1.der 2>/dev/null
openssl ec -in p256.pem -pubout -out p256.pub.pem 2>/dev/null
openssl ec -in p256.pem -pubout -conv_form compressed -outform DER -out p256.pub.compressed.der 2>/dev/null
openssl pkcs8 -topk8 -in p384.p8.pem -scrypt -passout pass:$pass -out p384.enc-scrypt.pem
openssl pkcs8 -topk8 -in p521.plain.pem -v2 aes-128-cbc -passout pass:$pass -out p521.enc.pem
openssl pkcs8 -topk8 -in p521.plain.pem -v2 aes-128-cbc -passout pass:$pass -outform DER -out p521.enc.der
rm p521.plain.pem
openssl pkey -in ed25519.p8.pem -outform DER -out ed25519.p8.der
openssl pkey -in ed25519.p8.pem -pubout -out ed25519.pub.pem

# Signatures: "key scheme hash signature-hex" lines.
sig() { # key file, scheme, hash, extra openssl options
  local key=$1 scheme=$2 hash=$3
  shift 3
  local opts=(-passin pass:$pass)
  if [ "$scheme" = ed25519 ]; then
    s=$(openssl pkeyutl -sign -rawin -inkey "$key" -in msg.bin | xxd -p -c 10000)
  else
    s=$(openssl dgst "-$hash" -sign "$key" "${opts[@]}" "$@" msg.bin | xxd -p -c 10000)
  fi
  echo "$key $scheme $hash $s"
}
pss=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest)
for h in sha1 sha256 sha512; do sig rsa1024.pem pkcs1 $h; done
sig rsa1024.pem pss sha256 "${pss[@]}" -sigopt rsa_mgf1_md:sha256
for h in sha1 sha256 sha384 sha512; do sig rsa2048.p8.pem pkcs1 $h; done
for h in sha256 sha384 sha512; do sig rsa2048.p8.pem pss $h "${pss[@]}" -sigopt rsa_mgf1_md:$h; done
sig rsa2048e3.pem pkcs1 sha256
sig rsa3072.pem pkcs1 sha256
sig rsa3072.pem pss sha384 "${pss[@]}" -sigopt rsa_mgf1_md:sha384
sig rsa4608.pem pkcs1 sha512
sig rsa4608.pem pss sha256 "${pss[@]}" -sigopt rsa_mgf1_md:sha256
for k in p256.pem p384.p8.pem p521.enc.pem; do
  for h in sha1 sha256 sha384 sha512; do sig $k ecdsa $h; done
done
sig ed25519.p8.pem ed25519 identity
