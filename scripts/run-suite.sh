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
for f in api.token push-component.secret; do
	# xmppctl's token for xmpp-core's admin API; the secret platypus shares with xmpp-core
	if [ ! -s "$run/credentials/$f" ]; then
		head -c 32 /dev/urandom | base64 >"$run/credentials/$f"
		chmod 0600 "$run/credentials/$f"
	fi
done
export CREDENTIALS_DIRECTORY="$run/credentials" STATE_DIRECTORY="$run/state"
export XMPPCTL_URL=http://127.0.0.1:5280 XMPPCTL_TOKEN_FILE="$run/credentials/api.token"

# Two demo accounts, made once; their passwords stay in build/run/credentials/demo-accounts.
demo_accounts() {
	i=0
	until curl -sf -o /dev/null http://127.0.0.1:5280/health; do
		i=$((i + 1))
		[ $i -lt 100 ] || { echo "run: xmpp-core did not come up" >&2; return 1; }
		sleep 0.1
	done
	accounts="$run/credentials/demo-accounts"
	if [ ! -s "$accounts" ]; then
		: >"$accounts.new"
		chmod 0600 "$accounts.new"
		for u in alice bob; do
			pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
			printf '%s@localhost %s\n' "$u" "$pw" >>"$accounts.new"
		done
		mv "$accounts.new" "$accounts"
	fi
	# (again) register those the database lacks: it may have been removed since
	known=$("$bin/xmppctl" accounts localhost) || return 1
	while read -r jid pw; do
		echo "$known" | grep -qx "$jid" ||
			printf '%s\n' "$pw" | "$bin/xmppctl" register "$jid" >/dev/null || return 1
	done <"$accounts"
	echo "run: demo accounts (JID password), also in $accounts:"
	sed 's/^/run:   /' "$accounts"
	echo "run: log in with any XMPP client on 127.0.0.1:5222 (STARTTLS) or 5223 (direct TLS),"
	echo "run: or from a browser client at wss://127.0.0.1:5443/xmpp-websocket;"
	echo "run: the certificate is self-signed ($run/credentials/tls.crt)."
}

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
demo_accounts || stop
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
