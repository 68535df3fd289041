#!/usr/bin/env bash
# ACME benchmark: complete orders per second (newOrder, authorization,
# http-01 answered by the load generator, finalize with a CSR, chain
# downloaded) at concurrency 1, 16 and 64, one account per worker. Starts a
# dev server (release build) on a free port, makes a mount with an EC P-256
# root and intermediate, a role for names under bench.localhost (and IP
# SANs), and config/acme with http01_port set to the port sigil-bench
# serves the challenge answers on. Prints a Markdown table.
#
#   make && bench/acme.sh                        BENCH_SECONDS=10 per run
#   SIGIL_BUILD=build BENCH_CONCURRENCY="1 16 64" ACME_IDENT=dns|ip ACME_CSR_POOL=0 ACME_EAB=0 bench/acme.sh
# ACME_CSR_POOL=N: N keys and CSRs per worker made before the run (default
# 0: a fresh key per order). ACME_EAB=1: the directory requires External
# Account Binding (the accounts are made with EAB keys before the run).
#
# BENCH_CALLGRIND=N runs the server under valgrind's callgrind and counts the
# instructions it executes for N orders at the last concurrency (stable on a
# loaded machine, unlike orders/s); the profile stays in
# $BENCH_CALLGRIND_OUT.1 (default /tmp/sigil-acme.callgrind.1).
set -euo pipefail

source "$(dirname "$0")/lib.sh"
SECS=${BENCH_SECONDS:-10}
CONCURRENCY=${BENCH_CONCURRENCY:-1 16 64}
IDENT=${ACME_IDENT:-dns}
POOL=${ACME_CSR_POOL:-0}
EAB=${ACME_EAB:-0}
CG=${BENCH_CALLGRIND:-}
CG_OUT=${BENCH_CALLGRIND_OUT:-/tmp/sigil-acme.callgrind}
bench_init sigil-acme-bench "$SIGIL" "$BENCH"
bench_callgrind "$CG_OUT"
bench_start_server

M=acmebench
http01=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$url" "$token" "$M" "$http01" "$EAB" <<'EOF'
import json, sys, urllib.request
url, token, m, http01, eab = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
def api(method, path, body=None):
    req = urllib.request.Request(url + "/v1/" + path, method=method, headers={"X-Vault-Token": token},
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
    except urllib.error.HTTPError as e:
        sys.exit("bench setup: %s %s: HTTP %d %s" % (method, path, e.code, e.read()[:300]))
    return json.loads(raw)["data"] if raw else None
api("POST", "sys/mounts/" + m, {"type": "pki"})
api("POST", "sys/mounts/%s/tune" % m, {"max_lease_ttl": "87600h"})
api("POST", m + "/root/generate/internal", {"common_name": "acme bench root", "key_type": "ec", "ttl": "87000h",
                                            "issuer_name": "root"})
csr = api("POST", m + "/intermediate/generate/internal", {"common_name": "acme bench intermediate",
                                                          "key_type": "ec"})["csr"]
cert = api("POST", m + "/root/sign-intermediate", {"csr": csr, "common_name": "acme bench intermediate",
                                                  "issuer_ref": "root", "ttl": "43800h"})["certificate"]
imported = api("POST", m + "/intermediate/set-signed", {"certificate": cert})["imported_issuers"]
api("POST", m + "/config/issuers", {"default": imported[0]})
api("POST", m + "/roles/bench", {"allowed_domains": "bench.localhost", "allow_subdomains": True,
    "allow_ip_sans": True, "require_cn": False, "key_type": "ec", "ttl": "24h", "max_ttl": "72h"})
api("POST", m + "/config/acme", {"enabled": True, "allowed_roles": ["bench"], "http01_port": http01,
    "eab_policy": "new-account-required" if eab else "not-required"})
EOF

if [ -n "$CG" ]; then
	c=${CONCURRENCY##* }
	# Accounts are made (and instructions not yet counted) before the orders.
	"$BENCH" -mode acme -url "$url" -mount "$M" -role bench -http01 "$http01" -ident "$IDENT" \
		-csr-pool "$POOL" -c "$c" -n "$c" -d 1h -timeout 10m >/dev/null
	rm -f "$CG_OUT"*
	callgrind_control -i on "$pid" >/dev/null
	"$BENCH" -mode acme -url "$url" -token "$token" -mount "$M" -role bench -http01 "$http01" -ident "$IDENT" \
		-csr-pool "$POOL" -c "$c" -n "$CG" -d 1h -timeout 10m | grep -E '^(RESULT|requests)'
	callgrind_control -d "$pid" >/dev/null
	sleep 1
	ir=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$CG_OUT".1 | head -1)
	echo "callgrind: $ir server instructions for $CG orders at c=$c: $((ir / CG)) per order" \
		"(the accounts are made while instrumentation is on too: $c newAccount requests; profile: $CG_OUT.1)"
	exit 0
fi

# The server's CPU time so far (user + system), milliseconds: per order it is the
# figure that a loaded machine does not distort (the wall-clock rate is).
server_cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / hz}' "/proc/$pid/stat"
}

rows=()
load_start=$(bench_load)
for c in $CONCURRENCY; do
	cpu_before=$(server_cpu_ms)
	out=$("$BENCH" -mode acme -url "$url" -token "$token" -mount "$M" -role bench -http01 "$http01" \
		-ident "$IDENT" -csr-pool "$POOL" -c "$c" -d "${SECS}s" 2>"$work/bench.err" || true)
	res=$(grep '^RESULT ' <<<"$out" || true)
	cpu_after=$(server_cpu_ms)
	if [ -z "$res" ]; then
		echo "bench: no result for c=$c:" >&2
		cat "$work/bench.err" >&2
		continue
	fi
	[ -s "$work/bench.err" ] && sed 's/^/  /' "$work/bench.err" >&2
	grep -E '^(steps|requests|client) ' <<<"$out" | sed "s/^/  c=$c /" >&2
	declare -A r=()
	for kv in ${res#RESULT }; do r[${kv%%=*}]=${kv#*=}; done
	srv_cpu=$(awk -v a="$cpu_before" -v b="$cpu_after" -v n="${r[ok]}" 'BEGIN {printf "%.2f", (n > 0 ? (b - a) / n : 0)}')
	rows+=("| $c | ${r[rps]} | ${r[p50]} | ${r[p90]} | ${r[p99]} | ${r[max]} | ${r[ok]} | ${r[errors]} | $srv_cpu | ${r[client_cpu_ms]} |")
	echo "  c=$c: ${r[rps]} orders/s, p50 ${r[p50]} ms, p99 ${r[p99]} ms, failed ${r[errors]}" >&2
	csr_us=${r[csr_us]}
	unset r
done
load_end=$(bench_load)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo
echo "### sigil ACME orders, $(date -u +%Y-%m-%d), $(nproc) cores ($cpu), ${SECS} s per run"
echo
echo "Load average (1, 5, 15 min) before the runs: $load_start; after: $load_end."
echo "Identifiers: $IDENT; CSR: $([ "$POOL" -gt 0 ] && echo "pool of $POOL per worker, made before the run" || echo "fresh EC P-256 key per order (${csr_us:-?} us of client CPU each)"); EAB: $([ "$EAB" = 1 ] && echo required || echo no)."
echo
echo "| concurrency | orders/s | p50 ms | p90 ms | p99 ms | max ms | orders | failed | server CPU ms/order | load generator CPU ms/order |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "An order: newOrder, authorization, http-01 challenge (validated by the server against sigil-bench),"
echo "finalize with a CSR, certificate chain downloaded; one account and keep-alive connection per worker."
