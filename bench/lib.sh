# Shared by the benchmark scripts (run.sh, ocsp.sh, crl.sh, acme.sh); sourced,
# not run. Call bench_init, then bench_start_server.
#
#   bench_init NAME BINARY...   cd to the repository, BUILD (from $SIGIL_BUILD,
#                               default build), SIGIL, BENCH; checks that the
#                               binaries are built; makes $work and removes it
#                               (and stops the server) on exit.
#   bench_start_server          a dev server on a free loopback port with a
#                               random root token and its data in $work/data:
#                               sets port, token, url, pid; waits until healthy.
#   bench_api METHOD PATH [JSON]  one token-authenticated call, body to stdout.
#   bench_load                  the 1, 5 and 15 minute load averages.
#   bench_callgrind OUT         when $BENCH_CALLGRIND is set, SIGIL becomes a
#                               valgrind --tool=callgrind wrapper writing OUT,
#                               with instrumentation off until the script
#                               turns it on (callgrind_control -i on).

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${SIGIL_BUILD:-build}
SIGIL=$BUILD/sigil
BENCH=$BUILD/sigil-bench
work=
pid=

bench_cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		wait "$pid" 2>/dev/null || true
	fi
	[ -n "$work" ] && rm -rf "$work"
	return 0
}

bench_init() {
	local name=$1 b
	shift
	for b in "$@"; do
		[ -x "$b" ] || { echo "bench: $b is not built (run make)" >&2; exit 1; }
	done
	work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}

bench_start_server() {
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	token=bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
	url=http://127.0.0.1:$port
	"$SIGIL" server -dev -dev-listen-address=127.0.0.1:"$port" -dev-root-token-id="$token" \
		-dev-data-dir="$work/data" >"$work/server.log" 2>&1 &
	pid=$!
	for _ in $(seq 300); do
		curl -fsS -o /dev/null "$url/v1/sys/health" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || { echo "bench: server exited:" >&2; tail -n 20 "$work/server.log" >&2; exit 1; }
		sleep 0.1
	done
	curl -fsS -o /dev/null "$url/v1/sys/health" || { echo "bench: server not healthy" >&2; exit 1; }
}

bench_api() { # method path [json]
	curl -fsS -X "$1" -H "X-Vault-Token: $token" ${3:+-H "Content-Type: application/json" --data "$3"} "$url/v1/$2"
}

bench_load() {
	cut -d' ' -f1-3 /proc/loadavg
}

bench_callgrind() {
	[ -n "${BENCH_CALLGRIND:-}" ] || return 0
	printf '#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=%s %s "$@"\n' \
		"$1" "$(realpath "$SIGIL")" >"$work/sigil-cg"
	chmod +x "$work/sigil-cg"
	SIGIL=$work/sigil-cg
}
