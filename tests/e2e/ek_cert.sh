#!/usr/bin/env bash
# EK certificates through the real agent and verifier. Vendor A manufactures
# TPM "good" and vendor B TPM "foreign" (swtpm_setup + swtpm-localca, see
# swtpm_manufacture.sh); TPM "plain" has no certificate at all. The verifier
# trusts vendor A only (--ek-ca, given in its config file) and lets exactly two
# ids through without a valid certificate (--allow-no-ek-cert):
#   - no certificate, and another vendor's certificate: refused, audited with
#     the reason, the agent exits, and nothing is kept (the same id later
#     enrolls from a TPM with a valid certificate and attests);
#   - a valid certificate: enrolls and attests;
#   - the allowed ids: enroll, and the audit trail says which exception was used;
#     an id that merely starts like an allowed one is refused.
set -u
. "$(dirname "$0")/lib.sh"
dg_workdir
MANUFACTURE="$DG_SOURCE_ROOT/tests/e2e/swtpm_manufacture.sh"
AUDIT="$DG_WORK/audit.jsonl"

bash "$MANUFACTURE" "$DG_WORK/ca-a" "$DG_WORK/good" || dg_fail "swtpm_setup (vendor A)"
bash "$MANUFACTURE" "$DG_WORK/ca-b" "$DG_WORK/foreign" || dg_fail "swtpm_setup (vendor B)"

mkdir -p "$DG_WORK/app" "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
echo "approved" > "$DG_WORK/app/bin"
"$DG_VERIFIER" baseline --name ek --agent 'ek-*' --secret token "$DG_WORK/app" \
	> "$DG_WORK/policies/ek.baseline" || dg_fail "baseline"
( umask 077; echo -n "tok-$$" > "$DG_WORK/secrets/token" )

# Misconfigurations stop the verifier at startup instead of weakening it.
timeout 10 "$DG_VERIFIER" serve --listen tcp://127.0.0.1:1 --policies "$DG_WORK/policies" \
	--secrets "$DG_WORK/secrets" --audit-log - --allow-no-ek-cert ek-x >/dev/null 2>&1 \
	&& dg_fail "--allow-no-ek-cert without --ek-ca was accepted"
timeout 10 "$DG_VERIFIER" serve --listen tcp://127.0.0.1:1 --policies "$DG_WORK/policies" \
	--secrets "$DG_WORK/secrets" --audit-log - --ek-ca "$DG_WORK/missing.pem" >/dev/null 2>&1 \
	&& dg_fail "a missing --ek-ca bundle was accepted"
timeout 10 "$DG_VERIFIER" serve --ek-ca "$DG_WORK/ca-a/bundle.pem" --allow-no-ek-cert 'bad id' \
	>/dev/null 2>&1; [ $? -eq 2 ] || dg_fail "an invalid --allow-no-ek-cert id was not a usage error"

cat > "$DG_WORK/verifier.conf" <<EOF
ek-ca = $DG_WORK/ca-a/bundle.pem
allow-no-ek-cert = ek-allowed
allow-no-ek-cert = ek-allowed2
EOF
dg_verifier_start --config "$DG_WORK/verifier.conf"

# audit_has ID EVENT DETAIL: the audit trail has that event for ID, detail containing DETAIL.
audit_has() {
	grep -F "\"event\":\"$2\",\"agent\":\"$1\"" "$AUDIT" | grep -qF "$3"
}

# expect_refused ID TPM DETAIL: an agent on TPM is refused at enrollment and exits.
expect_refused() {
	local id=$1 tpm=$2 detail=$3 rc swtpm
	dg_swtpm_start "$tpm"
	swtpm=${DG_PIDS[-1]}
	timeout 60 "$DG_AGENT" run --agent-id "$id" --tcti "$TCTI" --verifier "$VERIFIER_URL" \
		--control "ipc://$DG_WORK/agent-$id.sock" --state-dir "$DG_WORK/agent-$id-$tpm" \
		--measure "$DG_WORK/app" >>"$DG_WORK/agent-$id.log" 2>&1
	rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || dg_fail "$id on $tpm: agent exit $rc, expected a refusal"
	grep -q "enrollment refused" "$DG_WORK/agent-$id.log" || dg_fail "$id: agent did not report a refusal"
	audit_has "$id" enroll-refused "$detail" || { cat "$AUDIT" >&2; dg_fail "$id: no enroll-refused '$detail'"; }
	audit_has "$id" enrolled "" && dg_fail "$id: enrolled although refused"
	stop_swtpm "$swtpm"
	dg_note "$id on TPM $tpm: refused ($detail)"
}

# expect_pass ID TPM: an agent on TPM enrolls, attests and receives the secret.
expect_pass() {
	local id=$1 tpm=$2 swtpm
	dg_swtpm_start "$tpm"
	swtpm=${DG_PIDS[-1]}
	dg_agent_start "$id" --measure "$DG_WORK/app" --interval 60
	dg_wait_verdict pass
	[ "$(dg_agent_ctl secret token)" = "tok-$$" ] || dg_fail "$id: secret not released"
	audit_has "$id" enrolled "" || dg_fail "$id: no enrolled event"
	kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
	stop_swtpm "$swtpm"
	dg_note "$id on TPM $tpm: enrolled and attested"
}

# Stop a swtpm so its state can be opened again; the next agent on that TPM
# then starts from a reset PCR 13, as after a reboot.
stop_swtpm() {
	kill "$1" 2>/dev/null; wait "$1" 2>/dev/null
}

# A TPM without a certificate, and one with another vendor's certificate.
expect_refused ek-1 plain "no EK certificate"
expect_refused ek-2 foreign "invalid EK certificate: EK certificate does not verify against the CA bundle"
# An id is allowed only by its exact name.
expect_refused ek-allowed-not plain "no EK certificate"
grep -q '"event":"ek-cert-exempt"' "$AUDIT" && dg_fail "an exception was used for an id not listed"

# The agent read vendor A's certificate from NV and the verifier accepted it;
# the ids refused above kept no state and enroll now from that TPM.
expect_pass ek-good good
grep -q "no EK certificate" "$DG_WORK/agent-ek-good.log" && dg_fail "agent on TPM good sent no certificate"
expect_pass ek-1 good
expect_pass ek-2 good

# The operator's exceptions, each named in the audit trail with what was wrong.
expect_pass ek-allowed plain
audit_has ek-allowed ek-cert-exempt "no EK certificate; allowed by --allow-no-ek-cert" \
	|| dg_fail "ek-allowed: exception not audited as 'no EK certificate'"
expect_pass ek-allowed2 foreign
audit_has ek-allowed2 ek-cert-exempt "invalid EK certificate: EK certificate does not verify" \
	|| dg_fail "ek-allowed2: exception not audited as 'invalid EK certificate'"
[ "$(grep -c '"event":"ek-cert-exempt"' "$AUDIT")" -eq 2 ] || dg_fail "expected exactly two exceptions"

kill -0 "$VERIFIER_PID" 2>/dev/null || dg_fail "verifier died"
echo "ok: EK certificates required, checked against the CA bundle, exceptions per agent id"
