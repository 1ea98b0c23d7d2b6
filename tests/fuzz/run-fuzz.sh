#!/bin/sh
# run-fuzz.sh SECONDS TARGET... - `make fuzz`: run each libFuzzer target for SECONDS, starting
# from its committed seed corpus (tests/fuzz/<target>/) and growing a scratch corpus in
# build/fuzz/corpus/<target>/. A crash leaves its input in build/fuzz/ and fails the run; add
# the (minimised) input to the seed corpus once fixed so `make test` replays it forever.
set -eu
secs=$1
shift
status=0
for t in "$@"; do
	name=$(basename "$t")
	scratch=build/fuzz/corpus/$name
	mkdir -p "$scratch"
	echo "fuzz: $name for ${secs}s"
	if ! "$t" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=build/fuzz/"$name"- \
		"$scratch" "tests/fuzz/$name" 2>build/fuzz/"$name".log; then
		echo "fuzz: $name FAILED; see build/fuzz/$name.log" >&2
		tail -n 30 build/fuzz/"$name".log >&2
		status=1
	else
		grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' build/fuzz/"$name".log |
			sed "s/^/fuzz: $name /"
	fi
done
exit $status
