#!/usr/bin/env bash
# Issuance benchmark. Starts a dev server (release build, certificates stored
# in LMDB as usual) on a free port, makes one mount per key type with its own
# root and intermediate (EC P-256, RSA-2048; leaf keys of the same type),
# runs sign/:role and issue/:role at concurrency 1, 16 and 64, and prints a
# Markdown table plus `openssl speed` figures of this machine for comparison.
#
#   make && bench/run.sh                    BENCH_SECONDS=5 per run (default)
#   SIGIL_BUILD=build BENCH_CONCURRENCY="1 16 64" BENCH_KEYS="ec rsa" BENCH_MODES="sign issue" bench/run.sh
# A run counts the answers that arrive within its window: RSA issue/ at high
# concurrency needs a longer one (BENCH_SECONDS=30), as every key takes
# about 0.3 s of CPU.
set -euo pipefail

source "$(dirname "$0")/lib.sh"
SECS=${BENCH_SECONDS:-5}
CONCURRENCY=${BENCH_CONCURRENCY:-1 16 64}
KEYS=${BENCH_KEYS:-ec rsa}
MODES=${BENCH_MODES:-sign issue}
bench_init sigil-bench "$SIGIL" "$BENCH"
bench_start_server

# Mounts bench-ec / bench-rsa: root and intermediate of the key type, the
# intermediate as default issuer, role "bench" for leaves of the same type.
python3 - "$url" "$token" $KEYS <<'EOF'
import json, sys, urllib.request
url, token, kinds = sys.argv[1], sys.argv[2], sys.argv[3:]
def api(method, path, body=None):
    req = urllib.request.Request(url + "/v1/" + path, method=method, headers={"X-Vault-Token": token},
                                 data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
    except urllib.error.HTTPError as e:
        sys.exit("bench setup: %s %s: HTTP %d %s" % (method, path, e.code, e.read()[:300]))
    return json.loads(raw)["data"] if raw else None
for kt in kinds:
    bits = {"ec": 256, "rsa": 2048}[kt]
    m = "bench-" + kt
    api("POST", "sys/mounts/" + m, {"type": "pki"})
    api("POST", "sys/mounts/%s/tune" % m, {"max_lease_ttl": "87600h"})
    api("POST", m + "/root/generate/internal", {"common_name": "bench %s root" % kt, "key_type": kt,
        "key_bits": bits, "ttl": "87000h", "issuer_name": "root"})
    csr = api("POST", m + "/intermediate/generate/internal", {"common_name": "bench %s intermediate" % kt,
              "key_type": kt, "key_bits": bits})["csr"]
    cert = api("POST", m + "/root/sign-intermediate", {"csr": csr, "common_name": "bench %s intermediate" % kt,
                                                      "issuer_ref": "root", "ttl": "43800h"})["certificate"]
    imported = api("POST", m + "/intermediate/set-signed", {"certificate": cert})["imported_issuers"]
    api("POST", m + "/config/issuers", {"default": imported[0]})
    api("POST", m + "/roles/bench", {"allowed_domains": "example.com", "allow_subdomains": True,
        "key_type": kt, "key_bits": bits, "ttl": "24h", "max_ttl": "72h"})
EOF

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
	-subj /CN=bench.example.com -out "$work/ec.csr" 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout /dev/null \
	-subj /CN=bench.example.com -out "$work/rsa.csr" 2>/dev/null

rows=()
load_start=$(bench_load)
for kt in $KEYS; do
	for mode in $MODES; do
		for c in $CONCURRENCY; do
			out=$("$BENCH" -url "$url" -token "$token" -mount "bench-$kt" -mode "$mode" -role bench \
				-c "$c" -d "${SECS}s" -csr "$work/$kt.csr" -cn bench.example.com 2>"$work/bench.err" || true)
			res=$(grep '^RESULT ' <<<"$out" || true)
			if [ -z "$res" ]; then
				echo "bench: no result for $kt $mode c=$c:" >&2
				cat "$work/bench.err" >&2
				continue
			fi
			[ -s "$work/bench.err" ] && sed 's/^/  /' "$work/bench.err" >&2
			declare -A r=()
			for kv in ${res#RESULT }; do r[${kv%%=*}]=${kv#*=}; done
			label=$([ "$kt" = ec ] && echo "EC P-256" || echo "RSA-2048")
			rows+=("| $label | $mode | $c | ${r[rps]} | ${r[p50]} | ${r[p90]} | ${r[p99]} | ${r[max]} | ${r[ok]} | ${r[errors]} |")
			echo "  $label $mode c=$c: ${r[rps]} req/s, p50 ${r[p50]} ms, p99 ${r[p99]} ms, errors ${r[errors]}" >&2
			unset r
		done
	done
done

load_end=$(bench_load)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
fs=$(df -T "$work" | awk 'NR==2 {print $2}')
echo
echo "### sigil issuance, $(date -u +%Y-%m-%d), $(nproc) cores ($cpu), data dir on $fs, ${SECS} s per run"
echo
echo "Load average (1, 5, 15 min) before the runs: $load_start; after: $load_end."
echo
echo "| key type | endpoint | concurrency | certs/s | p50 ms | p90 ms | p99 ms | max ms | certs | errors |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "Each certificate is stored (LMDB, group commit + fsync) before the answer."
echo "sign: client CSR (the server verifies it and signs); issue: the server also generates the leaf key."
echo
echo "### openssl speed on the same machine (one core)"
echo
echo '```'
openssl speed -seconds 3 ecdsap256 2>/dev/null | tail -n 2
openssl speed -seconds 3 rsa2048 2>/dev/null | tail -n 2
echo '```'
