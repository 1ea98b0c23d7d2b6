#!/bin/sh
# run-suite.sh - `make run`: start the whole suite in the foreground on loopback with the example
# configuration in config/. A development certificate (self-signed, for localhost) is made once
# in build/run/credentials, which stands in for systemd's $CREDENTIALS_DIRECTORY. Ctrl-C (or
# SIGTERM) stops every daemon cleanly; if one daemon dies, the others are stopped too.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
bin=${SUITE_BIN:-$top/build/bin}
run=${SUITE_RUN_DIR:-$top/build/run}
daemons="xmpp-core platypus icicle"

mkdir -p "$run/credentials" "$run/state"
chmod 0700 "$run/credentials"
if [ ! -s "$run/credentials/tls.key" ]; then
	echo "run: making a development certificate for localhost in $run/credentials"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
		-subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
		-keyout "$run/credentials/tls.key" -out "$run/credentials/tls.crt" 2>/dev/null
	chmod 0600 "$run/credentials/tls.key"
fi
if [ ! -s "$run/credentials/turn-secret" ]; then
	# the TURN REST secret icicle checks credentials with (xmpp-core will issue them with it)
	head -c 32 /dev/urandom | base64 >"$run/credentials/turn-secret"
	chmod 0600 "$run/credentials/turn-secret"
fi
export CREDENTIALS_DIRECTORY="$run/credentials" STATE_DIRECTORY="$run/state"

pids=""
stop() {
	trap - INT TERM
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	status=0
	for p in $pids; do wait "$p" || status=$?; done
	exit $status
}
trap stop INT TERM

for d in $daemons; do
	"$bin/$d" -c "$top/config/$d.yaml" --check-config >/dev/null
done
for d in $daemons; do
	# Own session: a Ctrl-C reaches only this script, which then stops each daemon once.
	setsid "$bin/$d" -c "$top/config/$d.yaml" &
	pids="$pids $!"
done
echo "run: suite started (pids$pids); admin: http://127.0.0.1:5280/health (xmpp-core)," \
	"http://127.0.0.1:9642/health (platypus), http://127.0.0.1:9641/health (icicle)."
echo "run: press Ctrl-C to stop."

# Wait until any daemon exits, then stop the rest.
while :; do
	for p in $pids; do
		if ! kill -0 "$p" 2>/dev/null; then
			echo "run: a daemon (pid $p) exited; stopping the suite" >&2
			stop
		fi
	done
	sleep 1
done
