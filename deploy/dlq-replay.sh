#!/bin/sh
# dlq-replay.sh — republish dead-lettered messages from GHAS_DLQ after a fix.
#
# Usage: deploy/dlq-replay.sh [-n] [-d] [-s PATTERN] [-f FIRST] [-t LAST]
#
#   -n          dry run: print what would be republished, publish nothing
#   -d          delete each entry from GHAS_DLQ once its republish is acked
#   -s PATTERN  only entries whose DLQ subject matches the shell pattern,
#               e.g. 'ghas.dlq.sink' or 'ghas.dlq.*_alert' (default: all)
#   -f FIRST    first GHAS_DLQ sequence to consider (default: the first)
#   -t LAST     last GHAS_DLQ sequence to consider (default: the last one
#               when the run starts, so entries dead-lettered again during
#               the run are not replayed in a loop)
#
# Needs the nats CLI (natscli, a version with `nats pub --no-templates`), jq
# (1.6+) and base64, and reaches NATS the way the nats CLI does (NATS_URL,
# --context via NATS_CONTEXT, NATS_USER/NATS_PASSWORD...), as the operators'
# user ghas-admin of deploy/nats (the binaries' users may not do this). In
# Kubernetes, run it in the nats-box pod after `apk add --no-cache jq`.
#
# What it publishes, per entry (docs/operations.md, "Dead letters"):
#
#   ghas.dlq.<event> (processor)  the body as stored, to its original subject
#       (header Ghas-Original-Subject: ghas.webhook.<event>,
#       ghas.reconcile.<event> or ghas.redelivery.<event>) with its original
#       headers. Replaying an old event is safe: the processor never lets an
#       older event overwrite newer state.
#   ghas.dlq.sink (sink forwarder)  the finding's CURRENT document from KV
#       ghas_findings (the dead-lettered body if the key is gone), once per
#       finding key, to ghas.sink.replay.<type>.<repository_id> (stored in
#       GHAS_FINDINGS, read only by the sink forwarder). The sink orders
#       versions by stream sequence, so republishing an old body would
#       overwrite a newer version at the sink.
#
# Dropped headers: Ghas-Error, Ghas-Original-*, and Nats-Msg-Id, which becomes
# "replay:GHAS_DLQ:<sequence>": a second run within the streams' 1 h
# duplicate window publishes nothing twice, and the original id (the GitHub
# delivery GUID) would be dropped as a duplicate inside that window.
set -eu

DLQ=GHAS_DLQ
dry=0 del=0 pattern='*' first='' last=''
while getopts nds:f:t:h opt 2>/dev/null; do
	case $opt in
	n) dry=1 ;;
	d) del=1 ;;
	s) pattern=$OPTARG ;;
	f) first=$OPTARG ;;
	t) last=$OPTARG ;;
	*) sed -n '2,18s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
	esac
done

for tool in nats jq base64; do
	command -v "$tool" >/dev/null 2>&1 || { echo "dlq-replay: $tool not found" >&2; exit 2; }
done
# A message body is Go-template text to `nats pub` unless templates are off;
# a finding or alert body containing "{{" would be corrupted.
if ! nats pub --help 2>&1 | grep -q -- 'templates'; then
	echo "dlq-replay: this nats CLI has no --no-templates flag; upgrade natscli" >&2
	exit 2
fi

# header NAME: the first value of header NAME of the current entry.
header() { sed -n "s/^$1:\(.*\)\$/\1/p" "$tmp/headers" | head -n 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
: >"$tmp/seen-keys"

nats stream info "$DLQ" --json >"$tmp/info.json"
[ -n "$first" ] || first=$(jq -r '.state.first_seq' "$tmp/info.json")
[ -n "$last" ] || last=$(jq -r '.state.last_seq' "$tmp/info.json")
echo "dlq-replay: $DLQ sequences $first..$last, subjects matching '$pattern'$( [ $dry = 1 ] && echo ', dry run')" >&2

replayed=0 skipped=0 failed=0
seq=$first
while [ "$seq" -le "$last" ]; do
	cur=$seq
	seq=$((seq + 1))
	# Deleted or expired sequences are gaps: skip them. Any other error stops
	# the run (rather than skipping entries silently).
	if ! nats stream get "$DLQ" "$cur" --json >"$tmp/msg.json" 2>"$tmp/err"; then
		if grep -Eqi 'no message found|not found' "$tmp/err"; then continue; fi
		echo "dlq-replay: read $DLQ#$cur: $(cat "$tmp/err")" >&2
		exit 1
	fi
	subject=$(jq -r '.subject' "$tmp/msg.json")
	# shellcheck disable=SC2254 # $pattern is a shell pattern on purpose
	case $subject in $pattern) ;; *) continue ;; esac

	# Headers as "Name:value" lines, in order, repeated names kept.
	jq -r '.hdrs // "" | @base64d | split("\r\n") | .[1:][] | select(length > 0)
		| capture("^(?<k>[^:]+):[ \t]*(?<v>.*)$") | "\(.k):\(.v)"' \
		"$tmp/msg.json" >"$tmp/headers"
	orig=$(header Ghas-Original-Subject)
	reason=$(header Ghas-Error)
	jq -r '.data // ""' "$tmp/msg.json" | base64 -d >"$tmp/body"

	if [ "$subject" = ghas.dlq.sink ]; then
		key=$(header Ghas-Finding-Key)
		if [ -z "$orig" ] || [ -z "$key" ]; then
			echo "skip  $cur $subject: no Ghas-Original-Subject or Ghas-Finding-Key" >&2
			skipped=$((skipped + 1)); continue
		fi
		if grep -Fxq -- "$key" "$tmp/seen-keys"; then
			echo "skip  $cur $subject: $key already republished in this run" >&2
			skipped=$((skipped + 1))
			[ $dry = 1 ] || [ $del = 0 ] || nats stream rmm "$DLQ" "$cur" -f >/dev/null
			continue
		fi
		echo "$key" >>"$tmp/seen-keys"
		# Findings are written by the processor to KV ghas_findings and
		# copied to ghas.findings.* by the server; a replay for the sink
		# goes to ghas.sink.replay.*, which only the sink forwarder reads.
		orig="ghas.sink.replay.${orig#ghas.findings.}"
		if nats kv get ghas_findings "$key" --raw >"$tmp/current" 2>/dev/null && [ -s "$tmp/current" ]; then
			mv "$tmp/current" "$tmp/body"
			what="current document of $key"
		else
			what="dead-lettered document of $key (not in ghas_findings)"
		fi
	else
		# Processor entries: fall back to the webhook subject of the event.
		[ -n "$orig" ] || orig="ghas.webhook.${subject#ghas.dlq.}"
		what="event $(header GitHub-Event) delivery $(header GitHub-Delivery)"
	fi

	set -- -H "Nats-Msg-Id:replay:$DLQ:$cur"
	while IFS= read -r line; do
		case ${line%%:*} in
		Nats-* | Ghas-Error | Ghas-Original-*) ;;
		*) set -- "$@" -H "$line" ;;
		esac
	done <"$tmp/headers"

	if [ $dry = 1 ]; then
		echo "would $cur $subject -> $orig: $what (error was: $reason)"
		replayed=$((replayed + 1)); continue
	fi
	if out=$(nats pub "$orig" --jetstream --force-stdin --no-templates "$@" <"$tmp/body" 2>&1); then
		case $out in *"Duplicate: true"*) note=' (duplicate: replayed before)' ;; *) note='' ;; esac
		echo "ok    $cur $subject -> $orig: $what$note"
		replayed=$((replayed + 1))
		[ $del = 0 ] || nats stream rmm "$DLQ" "$cur" -f >/dev/null
	else
		echo "FAIL  $cur $subject -> $orig: $out" >&2
		failed=$((failed + 1))
	fi
done

echo "dlq-replay: $replayed republished, $skipped skipped, $failed failed" >&2
[ "$failed" -eq 0 ]
