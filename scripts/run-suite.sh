#!/bin/sh
# run-suite.sh - `make run`: start the whole suite in the foreground on loopback with the example
# configuration in config/, wired together for development: platypus attached to xmpp-core as
# its push component (push.localhost) with the log provider instead of APNs/FCM, and xmpp-core
# handing out icicle's TURN credentials (XEP-0215). The run's configuration files are made in
# build/run/config from config/*.yaml plus those additions, so the examples (what `make install`
# copies) stay production-safe. A development certificate (self-signed, for localhost) and every
# shared secret are made once in build/run/credentials, which stands in for systemd's
# $CREDENTIALS_DIRECTORY. Ctrl-C (or SIGTERM) stops every daemon cleanly; if one daemon dies,
# the others are stopped too.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
bin=${SUITE_BIN:-$top/build/bin}
run=${SUITE_RUN_DIR:-$top/build/run}
daemons="xmpp-core platypus icicle"

mkdir -p "$run/credentials" "$run/state" "$run/config"
chmod 0700 "$run/credentials"
if [ ! -s "$run/credentials/tls.key" ]; then
	echo "run: making a development certificate for localhost in $run/credentials"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
		-subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
		-keyout "$run/credentials/tls.key" -out "$run/credentials/tls.crt" 2>/dev/null
	chmod 0600 "$run/credentials/tls.key"
fi
if [ ! -s "$run/credentials/turn-secret" ]; then
	# the TURN REST secret icicle checks credentials with and xmpp-core issues them with
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

# The run's configuration: the examples plus the development wiring.
{
	# the example's upload service (off) is turned on: photos and files in chats (XEP-0363)
	sed '/^upload:/,/^$/ s/^  enabled: false/  enabled: true/' "$top/config/xmpp-core.yaml"
	cat <<'EOF'

# --- added by make run: icicle's TURN credentials for clients (XEP-0215) ---
extdisco:
  secret_file: ${CREDENTIALS_DIRECTORY}/turn-secret   # the file icicle's auth.secret_file reads
  lifetime: 1d
  servers:
    - host: 127.0.0.1
      port: 3478
      transports: [udp, tcp]
      stun: true
      turns_port: 5349
EOF
} >"$run/config/xmpp-core.yaml"
{
	# the example's component: section (off) is replaced by one attached to xmpp-core
	awk '/^component:/ { skip = 1; next } skip && /^[^ #]/ { skip = 0 } !skip' \
		"$top/config/platypus.yaml"
	cat <<'EOF'

# --- added by make run: attached to xmpp-core, notifications logged instead of sent ---
component:
  enabled: true
  server: 127.0.0.1:5347          # xmpp-core's component listener
  domain: push.localhost          # as listed in xmpp-core's components:
  secret: ${CREDENTIALS_DIRECTORY}/push-component.secret
  xmpp_domains: [localhost]

production: false                 # development machine: the log provider is allowed
log_apps:                         # DEVELOPMENT ONLY: one JSON line per notification
  - name: dev-ios
    service: apns
    mode: prod
    file: ${STATE_DIRECTORY}/push.log
  - name: dev-ios-sandbox
    service: apns
    mode: dev
    file: ${STATE_DIRECTORY}/push.log
  - name: dev-android
    service: fcm
    mode: prod
    file: ${STATE_DIRECTORY}/push.log
  - name: dev-android-dev
    service: fcm
    mode: dev
    file: ${STATE_DIRECTORY}/push.log
EOF
} >"$run/config/platypus.yaml"
cp "$top/config/icicle.yaml" "$run/config/icicle.yaml"
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
	echo "run: photos and files: clients find upload.localhost; files go to https://localhost:5281"
	echo "run: calls: clients get STUN/TURN servers and credentials from xmpp-core (XEP-0215);"
	echo "run: icicle relays on 127.0.0.1:3478 (UDP, TCP) and 5349 (TLS)."
	echo "run: push: platypus is xmpp-core's component push.localhost; it sends nothing and"
	echo "run: writes each notification as a JSON line to $run/state/push.log"
	echo "run: (MongoosePush REST API: https://127.0.0.1:8443/v3/notification/TOKEN)."
	demo="/usr/bin/python3 $top/scripts/push-demo.py"
	[ "$run" = "$top/build/run" ] || demo="$demo --run-dir $run"
	echo "run: to see a push appear, run in another terminal:  $demo"
	echo "run: (alice enables push and logs out, bob writes to her, and the JSON line platypus"
	echo "run: writes to push.log is printed; or watch it with: tail -f $run/state/push.log)."
	echo "run: configuration used: $run/config/*.yaml"
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
	"$bin/$d" -c "$run/config/$d.yaml" --check-config >/dev/null
done
for d in $daemons; do
	# Own session: a Ctrl-C reaches only this script, which then stops each daemon once.
	setsid "$bin/$d" -c "$run/config/$d.yaml" &
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
