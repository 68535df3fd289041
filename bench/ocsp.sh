#!/usr/bin/env bash
# OCSP benchmark: GETs of one pre-encoded OCSP request (RFC 6960 A.1) for a
# good certificate at a concurrency, answered from the responder's
# pre-signed cache. Starts a dev server (release build) on a free port,
# makes a mount with an EC P-256 root and intermediate, issues a leaf,
# encodes the request with `openssl ocsp -reqout -no_nonce` (a nonce would
# ask for a freshly signed answer), checks one answer with openssl, then
# runs sigil-bench -mode ocsp.
#
#   make && bench/ocsp.sh                   BENCH_SECONDS=10, BENCH_CONCURRENCY="1 16 64"
set -euo pipefail

source "$(dirname "$0")/lib.sh"
SECS=${BENCH_SECONDS:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-1 16 64}
bench_init sigil-ocsp-bench "$SIGIL" "$BENCH"
bench_start_server
api() { bench_api "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(d[sys.argv[1]])' "$1"; }

api POST sys/mounts/ocspbench '{"type":"pki"}' >/dev/null
api POST sys/mounts/ocspbench/tune '{"max_lease_ttl":"87600h"}' >/dev/null
api POST ocspbench/root/generate/internal '{"common_name":"Bench Root","key_type":"ec","ttl":"87000h","issuer_name":"root"}' \
	| jget certificate >"$work/root.pem"
csr=$(api POST ocspbench/intermediate/generate/internal '{"common_name":"Bench Int","key_type":"ec"}' | jget csr)
api POST ocspbench/root/sign-intermediate "$(python3 -c 'import json,sys; print(json.dumps({"csr":sys.argv[1],"issuer_ref":"root","ttl":"43800h","format":"pem"}))' "$csr")" \
	| jget certificate >"$work/int.pem"
ids=$(api POST ocspbench/intermediate/set-signed "$(python3 -c 'import json,sys; print(json.dumps({"certificate":open(sys.argv[1]).read()}))' "$work/int.pem")" \
	| python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["imported_issuers"][0])')
api POST ocspbench/config/issuers "{\"default\":\"$ids\"}" >/dev/null
api POST ocspbench/roles/bench '{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec","max_ttl":"100h"}' >/dev/null
api POST ocspbench/issue/bench '{"common_name":"ocsp.example.com","ttl":"10h"}' | jget certificate >"$work/leaf.pem"
cat "$work/int.pem" "$work/root.pem" >"$work/chain.pem"
openssl ocsp -issuer "$work/int.pem" -cert "$work/leaf.pem" -no_nonce -reqout "$work/req.der" >/dev/null
# One answer through openssl first: signed, verified, good.
openssl ocsp -issuer "$work/int.pem" -cert "$work/leaf.pem" -no_nonce -url "$url/v1/ocspbench/ocsp" \
	-CAfile "$work/chain.pem" 2>&1 | grep -q "leaf.pem: good" || { echo "bench: responder check failed" >&2; exit 1; }

echo "| concurrency | responses/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|"
for c in $CONCURRENCY; do
	line=$("$BENCH" -url "$url" -mode ocsp -req "$work/req.der" -mount ocspbench -c "$c" -d "${SECS}s" | grep '^RESULT')
	v() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	echo "| $c | $(v rps) | $(v p50) | $(v p99) | $(v errors) |"
done
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
