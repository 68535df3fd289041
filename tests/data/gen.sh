#!/bin/sh
# Regenerates the CSR and certificate test files under tests/data/{csr,cert}/
# with the openssl CLI. Keys are fresh on every run, so the bytes change but
# the names, subjects and SANs the unit test expects do not.
#
# File names encode the expectation:
#   csr/valid/<name>.{pem,der}              parses, signature verifies
#   csr/invalid/<name>__<CODE>.<ext>        fails with SG_<CODE>
#   cert/valid/<name>__<count>.{pem,der}    <count> certificates
#   cert/invalid/<name>__<CODE>.<ext>       fails with SG_<CODE>
#
# Usage: tests/data/gen.sh   (from the repository root or anywhere)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
csr="$here/csr"
cert="$here/cert"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rm -rf "$csr/valid" "$csr/invalid" "$cert/valid" "$cert/invalid"
mkdir -p "$csr/valid" "$csr/invalid" "$cert/valid" "$cert/invalid"

key() { # key <file> rsa:<bits> | ec:<curve> | ed25519
	case "$2" in
	rsa:*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${2#rsa:}" -out "$1" 2>/dev/null ;;
	ec:*) openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${2#ec:}" -out "$1" ;;
	ed25519) openssl genpkey -algorithm ED25519 -out "$1" ;;
	esac
}

# flip <file>: inverts the last byte, which is always inside the signature
# BIT STRING (the last field of a PKCS#10 request).
flip() {
	/usr/bin/python3 - "$1" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[-1] ^= 0xff
open(p, "wb").write(bytes(b))
EOF
}

der2pem() { # der2pem <label> <der> <pem>
	{
		echo "-----BEGIN $1-----"
		base64 -w 64 "$2"
		echo "-----END $1-----"
	} >"$3"
}

key "$tmp/rsa2048.key" rsa:2048
key "$tmp/rsa3072.key" rsa:3072
key "$tmp/rsa4096.key" rsa:4096
key "$tmp/p256.key" ec:P-256
key "$tmp/p384.key" ec:P-384
key "$tmp/ed25519.key" ed25519

req() { # req <key> <out> <subject> [extra openssl req args...]
	k=$1 out=$2 subj=$3
	shift 3
	openssl req -new -key "$k" -subj "$subj" -out "$out" "$@"
}

# ---------------- valid CSRs ----------------
v="$csr/valid"
req "$tmp/rsa2048.key" "$v/rsa2048.pem" "/CN=rsa2048.example.com"
req "$tmp/rsa2048.key" "$v/rsa2048_sans.pem" "/O=Sigil Test/CN=rsa2048.example.com" \
	-addext "subjectAltName=DNS:rsa2048.example.com,DNS:www.example.com"
openssl req -in "$v/rsa2048_sans.pem" -outform DER -out "$v/rsa2048_sans.der"
req "$tmp/rsa3072.key" "$v/rsa3072.pem" "/CN=rsa3072.example.com" \
	-addext "subjectAltName=DNS:rsa3072.example.com"
req "$tmp/rsa4096.key" "$v/rsa4096.der" "/CN=rsa4096.example.com" -outform DER \
	-addext "subjectAltName=DNS:rsa4096.example.com"
req "$tmp/p256.key" "$v/ec256_sans.pem" "/CN=ec256.example.com" \
	-addext "subjectAltName=DNS:ec256.example.com,DNS:*.ec256.example.com"
req "$tmp/p256.key" "$v/ec256_all_sans.pem" "/CN=all.example.com/serialNumber=SN-42/UID=alice" \
	-addext "subjectAltName=DNS:all.example.com,IP:10.0.0.1,IP:2001:db8:0:0:0:0:0:1,URI:spiffe://example.org/ns/default/sa/web,email:ops@example.com,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:user@example.com"
req "$tmp/p384.key" "$v/ec384.pem" "/CN=ec384.example.com"
req "$tmp/ed25519.key" "$v/ed25519.pem" "/CN=ed25519.example.com" \
	-addext "subjectAltName=DNS:ed25519.example.com"
# Empty subject: the names live in the SAN only.
req "$tmp/p256.key" "$v/no_subject.pem" "/" -addext "subjectAltName=DNS:nosubject.example.com"
# The legacy Netscape/MSIE label (RFC 7468 section 7).
req "$tmp/p256.key" "$tmp/new.der" "/CN=new.example.com" -outform DER
der2pem "NEW CERTIFICATE REQUEST" "$tmp/new.der" "$v/new_header.pem"
# RFC 7468 section 2: explanatory text around the block, CRLF line endings.
{
	printf 'Certificate request for text.example.com\r\n'
	req "$tmp/p256.key" /dev/stdout "/CN=text.example.com" | sed 's/$/\r/'
	printf 'end of message\r\n'
} >"$v/text_crlf.pem"

# ---------------- invalid CSRs ----------------
i="$csr/invalid"
cp "$v/rsa2048_sans.pem" "$tmp/base.pem"
cp "$v/rsa2048_sans.der" "$tmp/base.der"
head -c 700 /dev/urandom | base64 -w 0 | head -c 600 >"$i/garbage__BAD_CSR.txt"
printf '\x30\x82\x01\x00not a request at all' >"$i/garbage__BAD_CSR.der"
: >"$i/empty__BAD_CSR.pem"
# Truncated: no END line.
head -n 8 "$tmp/base.pem" >"$i/truncated__BAD_CSR.pem"
# Truncated body: END line present, base64 cut short on a 4-character boundary.
{ head -n 6 "$tmp/base.pem"; echo "-----END CERTIFICATE REQUEST-----"; } >"$i/truncated_body__BAD_CSR.pem"
head -c 300 "$tmp/base.der" >"$i/truncated__BAD_CSR.der"
sed '3s/^..../!!!!/' "$tmp/base.pem" >"$i/badb64__BAD_CSR.pem"
sed '$s/REQUEST/QUEST/' "$tmp/base.pem" >"$i/mismatched_end__BAD_CSR.pem"
{ head -n 1 "$tmp/base.pem"; echo "Proc-Type: 4,ENCRYPTED"; echo; tail -n +2 "$tmp/base.pem"; } \
	>"$i/pem_headers__BAD_CSR.pem"
{ printf 'text\0with a NUL\n'; cat "$tmp/base.pem"; } >"$i/nul__BAD_CSR.pem"
cat "$tmp/base.pem" "$v/ec256_sans.pem" >"$i/two_csrs__BAD_CSR.pem"
{ cat "$tmp/base.der"; printf '\0\0'; } >"$i/trailing__BAD_CSR.der"
# Oversize: a valid request padded with explanatory text past CA_MAX_CSR_BYTES (64 KiB).
{ cat "$tmp/base.pem"; yes 'padding text outside the PEM block' | head -n 2000; } >"$i/oversize__BAD_CSR.pem"
cp "$tmp/base.der" "$tmp/rsa.der" && flip "$tmp/rsa.der" && der2pem "CERTIFICATE REQUEST" "$tmp/rsa.der" "$i/badsig__BAD_SIGNATURE.pem"
req "$tmp/p256.key" "$i/badsig_ec__BAD_SIGNATURE.der" "/CN=ec.example.com" -outform DER
flip "$i/badsig_ec__BAD_SIGNATURE.der"
req "$tmp/ed25519.key" "$tmp/ed.der" "/CN=ed.example.com" -outform DER
flip "$tmp/ed.der" && der2pem "CERTIFICATE REQUEST" "$tmp/ed.der" "$i/badsig_ed25519__BAD_SIGNATURE.pem"
# Two commonNames: ambiguous, refused by ca_csr_names.
req "$tmp/p256.key" "$i/two_cn__BAD_CSR.pem" "/CN=a.example.com/CN=b.example.com"

# ---------------- certificates ----------------
openssl req -x509 -new -key "$tmp/p256.key" -subj "/CN=Sigil Test Root" -days 3650 \
	-addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out "$tmp/root.pem"
openssl req -new -key "$tmp/p384.key" -subj "/CN=Sigil Test Intermediate" -out "$tmp/int.csr"
printf 'basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$tmp/int.ext"
openssl x509 -req -in "$tmp/int.csr" -CA "$tmp/root.pem" -CAkey "$tmp/p256.key" -CAcreateserial \
	-days 1825 -extfile "$tmp/int.ext" -out "$tmp/int.pem" 2>/dev/null
printf 'subjectAltName=DNS:leaf.example.com\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >"$tmp/leaf.ext"
openssl x509 -req -in "$v/ec256_sans.pem" -CA "$tmp/int.pem" -CAkey "$tmp/p384.key" -CAcreateserial \
	-days 30 -extfile "$tmp/leaf.ext" -out "$tmp/leaf.pem" 2>/dev/null

cv="$cert/valid"
cp "$tmp/root.pem" "$cv/root__1.pem"
openssl x509 -in "$tmp/root.pem" -outform DER -out "$cv/root__1.der"
cat "$tmp/leaf.pem" "$tmp/int.pem" "$tmp/root.pem" >"$cv/chain__3.pem"
# A bundle as pki/config/ca receives it: the key block is skipped by ca_pem_certs_parse.
cat "$tmp/ed25519.key" "$tmp/int.pem" "$tmp/root.pem" >"$cv/key_and_chain__2.pem"
{
	echo "Subject: CN=Sigil Test Root"
	cat "$tmp/root.pem"
	echo "trailing explanatory text"
} >"$cv/text__1.pem"
sed 's/$/\r/' "$tmp/int.pem" >"$cv/crlf__1.pem"

ci="$cert/invalid"
openssl x509 -in "$tmp/root.pem" -outform DER -out "$tmp/root.der"
head -c 500 /dev/urandom | base64 -w 0 | head -c 400 >"$ci/garbage__BAD_PEM.txt"
: >"$ci/empty__BAD_PEM.pem"
head -n 5 "$tmp/root.pem" >"$ci/truncated__BAD_PEM.pem"
{ head -n 4 "$tmp/root.pem"; echo "-----END CERTIFICATE-----"; } >"$ci/truncated_body__BAD_PEM.pem"
head -c 200 "$tmp/root.der" >"$ci/truncated__BAD_PEM.der"
{ cat "$tmp/root.der"; printf '\0'; } >"$ci/trailing__BAD_PEM.der"
sed '2s/^..../%%%%/' "$tmp/root.pem" >"$ci/badb64__BAD_PEM.pem"
sed '2s/^\(.\{10\}\)/\1====/' "$tmp/root.pem" >"$ci/inner_padding__BAD_PEM.pem"
sed '$s/END CERTIFICATE/END X509 CRL/' "$tmp/root.pem" >"$ci/mismatched_end__BAD_PEM.pem"
cp "$v/rsa2048.pem" "$ci/csr_not_cert__BAD_PEM.pem"
cp "$tmp/ed25519.key" "$ci/key_only__BAD_PEM.pem"
{ cat "$tmp/root.pem"; head -n 3 "$tmp/int.pem"; } >"$ci/second_truncated__BAD_PEM.pem"
n=0
while [ $n -lt 17 ]; do cat "$tmp/root.pem"; n=$((n + 1)); done >"$ci/too_many__BAD_PEM.pem"

# The fuzz seed corpus is the CSR test data (the oversize file only slows libFuzzer down).
corpus="$here/../fuzz/corpus/csr"
rm -rf "$corpus" && mkdir -p "$corpus"
cp "$csr"/valid/* "$csr"/invalid/* "$corpus"/
rm -f "$corpus/oversize__BAD_CSR.pem"

echo "regenerated $(find "$csr" "$cert" -type f | wc -l) files"
