#!/usr/bin/env bash
# Policies change while the verifier runs (SIGHUP): no agent enrolls again or
# replays from the start, every verdict names the policy version it rests on,
# a broken policy directory is refused and the policies in force stay, and a
# secret the new policies no longer grant is revoked at the next renewal.
set -u
. "$(dirname "$0")/lib.sh"
dg_workdir
dg_swtpm_start tpm
mkdir -p "$DG_WORK/app" "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
for i in $(seq 1 5); do echo "file $i" > "$DG_WORK/app/f$i"; done
( umask 077; echo -n "tok-$$" > "$DG_WORK/secrets/token" )
baseline() { # [--secret token]
	"$DG_VERIFIER" baseline --name app --agent 'node-*' "$@" "$DG_WORK/app" \
		> "$DG_WORK/policies/app.baseline.new" || dg_fail "baseline"
	mv "$DG_WORK/policies/app.baseline.new" "$DG_WORK/policies/app.baseline"
}
# reload EVENT: SIGHUP the verifier and wait for the audit event.
reload() {
	local before
	before=$(grep -c "\"event\":\"$1\"" "$DG_WORK/audit.jsonl")
	kill -HUP "$VERIFIER_PID"
	for _ in $(seq 1 100); do
		[ "$(grep -c "\"event\":\"$1\"" "$DG_WORK/audit.jsonl")" -gt "$before" ] && return 0
		sleep 0.05
	done
	dg_fail "no $1 event after SIGHUP"
}
last_policy() { grep '"event":"verdict"' "$DG_WORK/audit.jsonl" | tail -1 | sed 's/.*"policy":"\([0-9a-f]*\)".*/\1/'; }

baseline
dg_verifier_start
dg_agent_start node-1 --measure "$DG_WORK/app" --interval 1
dg_wait_verdict pass
v1=$(last_policy)
[ ${#v1} -eq 16 ] || dg_fail "verdicts do not name a policy version"
dg_agent_ctl secret token >/dev/null 2>&1 && dg_fail "secret released before any policy granted it"

dg_note "grant the secret: reload"
baseline --secret token
reload policy-reloaded
dg_agent_ctl attest >/dev/null || dg_fail "attest after reload"
v2=$(last_policy)
[ "$v2" != "$v1" ] || dg_fail "the verdict still names version $v1"
grep -q "\"detail\":\"version $v1 -> $v2\"" "$DG_WORK/audit.jsonl" || dg_fail "reload not audited with versions"
[ "$(dg_agent_ctl secret token)" = "tok-$$" ] || dg_fail "secret not released under the new policy"
[ "$(grep -c '"event":"enrolled"' "$DG_WORK/audit.jsonl")" -eq 1 ] || dg_fail "the agent enrolled again"
grep '"event":"verdict"' "$DG_WORK/audit.jsonl" | tail -1 | grep -q '"entries":5,"new_entries":0' \
	|| dg_fail "replay restarted instead of continuing"

dg_note "a broken policy file: refused, the policies in force stay"
printf 'driftgate-baseline 1\nname broken\nallow nonsense\n' > "$DG_WORK/policies/broken.baseline"
reload policy-reload-failed
kill -0 "$VERIFIER_PID" || dg_fail "the verifier died on a bad policy"
dg_agent_ctl attest >/dev/null || dg_fail "attest with the old policies"
[ "$(last_policy)" = "$v2" ] || dg_fail "a failed reload changed the version"
rm "$DG_WORK/policies/broken.baseline"

dg_note "withdraw the secret: the lease is revoked at the next renewal"
baseline
reload policy-reloaded
for _ in $(seq 1 50); do
	grep -q '"event":"lease-revoked"' "$DG_WORK/audit.jsonl" && break
	sleep 0.1
done
grep '"event":"lease-revoked"' "$DG_WORK/audit.jsonl" | grep -q "does not name secret token" \
	|| dg_fail "lease not revoked after the secret was withdrawn"
dg_agent_ctl secret token >/dev/null 2>&1 && dg_fail "secret still delivered after withdrawal"
[ "$(last_policy)" = "$v1" ] || dg_fail "same files should give the same version"
dg_note "reloads keep every agent's state; verdicts name the policy version"
