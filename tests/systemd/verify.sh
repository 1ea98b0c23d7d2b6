#!/bin/sh
# verify.sh - install the suite into a scratch root the way a package would (PREFIX=/usr,
# DESTDIR=...), then check every unit with systemd-analyze verify: directives, the binaries the
# units start, and the man pages their Documentation= lines name.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
cd "$top"
make --no-print-directory -s install PREFIX=/usr DESTDIR="$root" >/dev/null
# The units name /usr/bin/...; point a copy at the staged binaries for the check.
mkdir -p "$root/check"
for u in "$root"/usr/lib/systemd/system/*.service; do
	sed "s|/usr/bin/|$root/usr/bin/|g; s|/etc/|$root/etc/|g" "$u" >"$root/check/$(basename "$u")"
done
for d in icicle platypus xmpp-core; do
	test -x "$root/usr/bin/$d"
	test -f "$root/etc/$d/$d.yaml"
	test -f "$root/usr/share/man/man8/$d.8"
done
test -x "$root/usr/bin/xmppctl"
test -f "$root/usr/share/man/man8/xmppctl.8"
# xmpp-core's secrets exist, random, readable by root only
for f in api.token push-component.secret; do
	test -s "$root/etc/xmpp-core/$f"
	[ "$(stat -c %a "$root/etc/xmpp-core/$f")" = 600 ]
done
! cmp -s "$root/etc/xmpp-core/api.token" "$root/etc/xmpp-core/push-component.secret"
# a second install keeps them
token=$(cat "$root/etc/xmpp-core/api.token")
make --no-print-directory -s install PREFIX=/usr DESTDIR="$root" >/dev/null
[ "$(cat "$root/etc/xmpp-core/api.token")" = "$token" ]
MANPATH="$root/usr/share/man" systemd-analyze verify "$root"/check/*.service
echo "verified: $(ls "$root/check")"
