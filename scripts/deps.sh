#!/bin/sh
# deps.sh - make sure the Debian packages the suite needs are installed.
#   scripts/deps.sh build   what building and running needs
#   scripts/deps.sh test    what the tests need on top (real peers, tools)
# As root it installs what is missing with apt-get; otherwise it prints the exact command.
set -eu

build_pkgs="build-essential pkg-config clang libclang-rt-14-dev libuv1-dev libssl-dev openssl
  libnghttp2-dev libcurl4-openssl-dev libexpat1-dev libre-dev libcmocka-dev libyaml-dev
  libjansson-dev libhttp-parser-dev libsqlite3-dev libsystemd-dev libidn-dev libwslay-dev ca-certificates"
test_pkgs="python3 systemd curl coturn python3-aioice python3-h2 python3-cryptography
  python3-slixmpp nghttp2-client python3-aioapns prosody prosody-modules libstrophe-dev
  python3-websockets ejabberd nftables iproute2 lua-dbi-sqlite3 python3-aiohttp"
bench_pkgs="valgrind"

case "${1:-build}" in
build) want="$build_pkgs" ;;
test) want="$test_pkgs" ;;
bench) want="$bench_pkgs" ;;
*) echo "usage: $0 build|test|bench" >&2; exit 64 ;;
esac

missing=""
for p in $want; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: as root, run: apt-get update && $cmd" >&2
	exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them once if the install cannot find a package.
if ! $cmd >/tmp/deps-apt.log 2>&1; then
	apt-get update -q >/tmp/deps-apt-update.log 2>&1 || {
		cat /tmp/deps-apt-update.log >&2
		exit 1
	}
	$cmd >/tmp/deps-apt.log 2>&1 || { cat /tmp/deps-apt.log >&2; exit 1; }
fi
echo "deps: done"
