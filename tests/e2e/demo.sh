#!/usr/bin/env bash
# The end-to-end demo: a swtpm-backed agent and verifier, an approved set of
# files, a secret released; then an unapproved file is measured, the next
# attestation fails with a precise reason, and the secret is withheld.
# Exits 0 only if all of that happened.
set -u
. "$(dirname "$0")/lib.sh"
dg_workdir

say() { printf '\n== %s\n' "$*"; }

say "Starting a software TPM (swtpm)"
dg_swtpm_start tpm
echo "TPM reachable as $TCTI"

say "Approving a workload: the files under app/ and the secret db-password"
mkdir -p "$DG_WORK/app/bin" "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
cp /bin/true "$DG_WORK/app/bin/server"
printf '#!/bin/sh\necho healthy\n' > "$DG_WORK/app/bin/healthcheck"
printf 'listen=8080\n' > "$DG_WORK/app/config"
"$DG_VERIFIER" baseline --name demo --agent demo-node --secret db-password \
	"$DG_WORK/app" > "$DG_WORK/policies/demo.baseline" || dg_fail "baseline generation"
sed 's/^/  /' "$DG_WORK/policies/demo.baseline"
secret="s3cr3t-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
( umask 077; printf '%s' "$secret" > "$DG_WORK/secrets/db-password" )

say "Starting driftgate-verifier"
dg_verifier_start
echo "verifier listening on $VERIFIER_URL"

say "Starting driftgate-agent: enroll (EK/AK, credential activation), measure app/, attest"
dg_agent_start demo-node --measure "$DG_WORK/app" --interval 2
dg_wait_verdict pass
dg_agent_ctl status
got=$(dg_agent_ctl secret db-password) || dg_fail "approved agent did not receive its secret"
[ "$got" = "$secret" ] || dg_fail "released secret differs from the one on the verifier"
echo "secret db-password released to the agent (${#got} bytes, matches the verifier's copy)"

say "Drift: a binary that is not in the baseline appears and is measured"
cp /bin/echo "$DG_WORK/app/bin/miner"
out=$(dg_agent_ctl measure "$DG_WORK/app/bin/miner"); rc=$?
echo "$out"
[ "$rc" -eq 3 ] || dg_fail "measuring an unapproved binary should fail attestation (exit 3), got $rc"
case "$out" in *"unknown-file"*"app/bin/miner"*) ;; *) dg_fail "verdict does not name the file: $out" ;; esac

say "The secret is now withheld"
if dg_agent_ctl secret db-password >/dev/null 2>"$DG_WORK/secret.err"; then
	dg_fail "secret still available after drift"
fi
cat "$DG_WORK/secret.err"

say "Audit trail (JSON lines)"
cat "$DG_WORK/audit.jsonl"
grep -q '"verdict":"pass"' "$DG_WORK/audit.jsonl" || dg_fail "no passing verdict in the audit log"
grep -q '"code":"unknown-file"' "$DG_WORK/audit.jsonl" || dg_fail "no unknown-file verdict in the audit log"
grep -qF "$secret" "$DG_WORK/audit.jsonl" "$DG_WORK"/*.log && dg_fail "the secret value leaked into a log"

say "Demo complete: approved state released the secret; drift was detected and the secret withheld"
