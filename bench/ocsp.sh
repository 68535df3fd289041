#!/usr/bin/env bash
# OCSP benchmark: RFC 6960 A.1 GETs for BENCH_OCSP_CERTS distinct good
# certificates (default 1000) at each concurrency, answered from the
# responder's pre-signed cache. Starts a dev server (release build) on a
# free port, makes a mount with an EC P-256 root and intermediate, issues
# the leaves, checks one answer with `openssl ocsp`, then runs
# sigil-bench -mode ocsp, which builds one request per leaf (SHA-1 CertID,
# no nonce: a nonce would ask for a freshly signed answer), sends each once
# and verifies its answer (signature through the chain, status good,
# validity), then sends them round-robin; during the load every answer must
# be the verified one (or verify again).
#
#   make && bench/ocsp.sh      BENCH_SECONDS=10, BENCH_CONCURRENCY="1 16 64", BENCH_OCSP_CERTS=1000
#
# BENCH_CALLGRIND=N runs the server under valgrind's callgrind instead and
# counts the instructions the server executes for N requests at the last
# concurrency (stable on a loaded machine, unlike requests/s); the profile
# stays in $BENCH_CALLGRIND_OUT (default /tmp/sigil-ocsp.callgrind).
set -euo pipefail

source "$(dirname "$0")/lib.sh"
SECS=${BENCH_SECONDS:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-1 16 64}
NCERTS=${BENCH_OCSP_CERTS:-1000}
bench_init sigil-ocsp-bench "$SIGIL" "$BENCH"
CG=${BENCH_CALLGRIND:-}
CG_OUT=${BENCH_CALLGRIND_OUT:-/tmp/sigil-ocsp.callgrind}
bench_callgrind "$CG_OUT"
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
# The leaves the load asks about: one keep-alive connection, each a real certificate in the store.
python3 - "$url" "$token" "$NCERTS" "$work/leaves.pem" <<'PY'
import http.client, json, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
with open(sys.argv[4], "w") as f:
    for i in range(int(sys.argv[3])):
        body = json.dumps({"common_name": "ocsp%d.example.com" % i, "ttl": "10h"})
        conn.request("POST", "/v1/ocspbench/issue/bench", body,
                     {"X-Vault-Token": sys.argv[2], "Content-Type": "application/json"})
        r = conn.getresponse()
        d = json.loads(r.read())
        if r.status != 200:
            sys.exit("bench: issue failed: %s" % d)
        f.write(d["data"]["certificate"] + "\n")
PY
cat "$work/int.pem" "$work/root.pem" >"$work/chain.pem"
# One answer through openssl first: signed, verified, good.
openssl ocsp -issuer "$work/int.pem" -cert "$work/leaf.pem" -no_nonce -url "$url/v1/ocspbench/ocsp" \
	-CAfile "$work/chain.pem" 2>&1 | grep -q "leaf.pem: good" || { echo "bench: responder check failed" >&2; exit 1; }

if [ -n "$CG" ]; then
	c=${CONCURRENCY##* }
	rm -f "$CG_OUT"*
	# Warm-up: the start-up check has every answer signed and cached; the counted run only reads the cache.
	"$BENCH" -url "$url" -mode ocsp -issuer "$work/int.pem" -certs "$work/leaves.pem" -CAfile "$work/chain.pem" \
		-mount ocspbench -c 1 -n 1 -d 1h -timeout 10m >/dev/null
	callgrind_control -i on "$pid" >/dev/null
	"$BENCH" -url "$url" -mode ocsp -issuer "$work/int.pem" -certs "$work/leaves.pem" -CAfile "$work/chain.pem" \
		-mount ocspbench -c "$c" -n "$CG" -d 1h -timeout 10m | grep '^RESULT'
	callgrind_control -d "$pid" >/dev/null
	sleep 1
	ir=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$CG_OUT".1 | head -1)
	# The start-up check sends every request once more, on the same path.
	echo "callgrind: $ir instructions for $((CG + NCERTS)) requests at c=$c:" \
		"$((ir / (CG + NCERTS))) per request (profile: $CG_OUT.1)"
	exit 0
fi
echo "$NCERTS distinct certificates; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| concurrency | responses/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|"
for c in $CONCURRENCY; do
	line=$("$BENCH" -url "$url" -mode ocsp -issuer "$work/int.pem" -certs "$work/leaves.pem" \
		-CAfile "$work/chain.pem" -mount ocspbench -c "$c" -d "${SECS}s" | grep '^RESULT')
	v() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	echo "| $c | $(v rps) | $(v p50) | $(v p99) | $(v errors) |"
done
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
