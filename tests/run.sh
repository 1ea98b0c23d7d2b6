#!/bin/sh
# run.sh - `make test`, after the release and sanitizer builds: every unit test (cmocka), every
# fuzz corpus replayed, every integration test (the real daemons, started with generated
# configurations), the systemd units verified and the code format checked. All of it runs
# against the AddressSanitizer + UBSan build; any sanitizer report fails the run.
# Prints one line per step and closes with "N passed, N failed".
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
asan=build/asan
logdir=build/test-logs
rm -rf "$logdir"
mkdir -p "$logdir"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="print_suppressions=0"
export SUITE_BIN="$top/$asan/bin" SUITE_TOP="$top"

passed=0
failed=0
failures=""

# step NAME LOG CMD...: run CMD with a time limit, record the outcome.
step() {
	name=$1 log=$2
	shift 2
	if timeout -k 10 600 "$@" >"$log" 2>&1; then
		printf 'ok    %s\n' "$name"
		return 0
	fi
	printf 'FAIL  %s (log: %s)\n' "$name" "$log"
	tail -n 40 "$log" | sed 's/^/      | /'
	return 1
}

count() { # count PASSED FAILED NAME
	passed=$((passed + $1))
	failed=$((failed + $2))
	[ "$2" -gt 0 ] && failures="$failures $3"
	return 0
}

echo "== unit tests (cmocka, ASan+UBSan)"
for t in $(find "$asan/tests" -type f -name 'test_*' -perm -u+x 2>/dev/null | sort); do
	name=${t#"$asan/tests/"}
	[ -f "tests/$name.c" ] || continue # a stale binary whose source is gone
	log="$logdir/$(echo "$name" | tr / _).log"
	if step "$name" "$log" "$t"; then ok=1; else ok=0; fi
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	p=${p:-0} f=${f:-0}
	# A crash or a sanitizer report can end the binary before cmocka's summary.
	[ "$ok" -eq 0 ] && [ "$f" -eq 0 ] && f=1
	count "$p" "$f" "$name"
done

echo "== fuzz corpora replayed (ASan+UBSan)"
for r in $(find "$asan/replay" -type f -name 'fuzz_*' -perm -u+x 2>/dev/null | sort); do
	name=$(basename "$r")
	[ -f "tests/fuzz/$name.c" ] || continue
	if step "replay $name" "$logdir/replay_$name.log" "$r" "tests/fuzz/$name"; then
		count 1 0 "$name"
	else
		count 0 1 "replay:$name"
	fi
done

echo "== integration tests (real daemons)"
for t in $(find tests/integration -name 'test_*.py' | sort); do
	name=$(basename "$t" .py)
	log="$logdir/integration_$name.log"
	step "$name" "$log" /usr/bin/python3 -m unittest -v "$t" >/dev/null 2>&1
	ran=$(sed -n 's/^Ran \([0-9]*\) test.*/\1/p' "$log" | tail -n 1)
	ran=${ran:-0}
	bad=$(sed -n 's/^FAILED (\(.*\))/\1/p' "$log" | tr ',' '\n' | sed -n 's/.*=\([0-9]*\)/\1/p' |
		awk '{s+=$1} END {print s+0}')
	if grep -q '^OK' "$log"; then
		printf 'ok    %s (%s tests)\n' "$name" "$ran"
		count "$ran" 0 "$name"
	else
		printf 'FAIL  %s (log: %s)\n' "$name" "$log"
		grep -E '^(FAIL|ERROR):|Error|assert' "$log" | head -n 20 | sed 's/^/      | /'
		[ "$bad" -eq 0 ] && bad=1
		count $((ran - bad > 0 ? ran - bad : 0)) "$bad" "$name"
	fi
done

echo "== systemd units"
if step "systemd-analyze verify" "$logdir/systemd.log" tests/systemd/verify.sh; then
	count 1 0 systemd
else
	count 0 1 systemd
fi

echo "== documentation matches the code"
if step "config reference in docs/operations.md" "$logdir/docs.log" scripts/gen-docs.sh --check; then
	count 1 0 docs
else
	count 0 1 docs
fi

echo "== code format"
if step "clang-format" "$logdir/format.log" make --no-print-directory check-format; then
	count 1 0 format
else
	count 0 1 format
fi

echo
[ -n "$failures" ] && echo "failed:$failures"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
