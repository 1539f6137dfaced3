#!/usr/bin/env bash
# The agent-verifier link over TLS (nng tls+tcp): an agent that pins the
# verifier's certificate enrolls, attests and gets its secret; one pinning
# another certificate, and a plaintext one, never reach it.
set -u
. "$(dirname "$0")/lib.sh"
dg_workdir
mkdir -p "$DG_WORK/app" "$DG_WORK/policies" "$DG_WORK/secrets"
chmod 700 "$DG_WORK/secrets"
echo "approved" > "$DG_WORK/app/f"
"$DG_VERIFIER" baseline --name tls --agent 'tls-*' --secret s "$DG_WORK/app" \
	> "$DG_WORK/policies/tls.baseline" || dg_fail "baseline"
( umask 077; echo -n "secret-$$" > "$DG_WORK/secrets/s" )
for who in verifier other; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=verifier.test -addext subjectAltName=DNS:verifier.test \
		-keyout "$DG_WORK/$who.key" -out "$DG_WORK/$who.crt" 2>/dev/null || dg_fail "openssl req"
	cat "$DG_WORK/$who.crt" "$DG_WORK/$who.key" > "$DG_WORK/$who.pem"
	chmod 600 "$DG_WORK/$who.pem"
done

port=$(dg_free_port) || dg_fail "no free port"
"$DG_VERIFIER" serve --listen "tls+tcp://127.0.0.1:$port" --tls-cert "$DG_WORK/verifier.pem" \
	--policies "$DG_WORK/policies" --secrets "$DG_WORK/secrets" --state "$DG_WORK/v.db" \
	--audit-log "$DG_WORK/audit.jsonl" >>"$DG_WORK/verifier.log" 2>&1 &
DG_PIDS+=($!)
for _ in $(seq 1 100); do ss -Htln "sport = :$port" | grep -q . && break; sleep 0.05; done
VERIFIER_URL="tls+tcp://127.0.0.1:$port"
dg_swtpm_start tpm

# Pinned to the right certificate: the full loop works.
dg_agent_start tls-good --measure "$DG_WORK/app/f" --tls-ca "$DG_WORK/verifier.crt" \
	--tls-server-name verifier.test --interval 60
dg_wait_verdict pass
[ "$(dg_agent_ctl secret s)" = "secret-$$" ] || dg_fail "secret not released over TLS"
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null

# Pinned to another certificate: the handshake fails, nothing is enrolled.
dg_swtpm_start tpm-wrong
dg_agent_start tls-wrong --tls-ca "$DG_WORK/other.crt" --tls-server-name verifier.test \
	--timeout 500 --interval 60
sleep 3
kill -0 "$AGENT_PID" 2>/dev/null || dg_fail "the wrongly pinned agent should keep retrying, not exit"
grep -q "ENROLL_REQ to tls+tcp" "$DG_WORK/agent-tls-wrong.log" || dg_fail "the agent did not try to enroll"
grep -q '"agent":"tls-wrong"' "$DG_WORK/audit.jsonl" && dg_fail "an agent pinning another certificate reached the verifier"
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null

# A TLS address without a pin is refused at start; so is a plain address with one.
dg_swtpm_start tpm-x
"$DG_AGENT" run --agent-id tls-x --tcti "$TCTI" --verifier "$VERIFIER_URL" \
	--control "ipc://$DG_WORK/x.sock" --state-dir "$DG_WORK/x" >"$DG_WORK/x.log" 2>&1 \
	&& dg_fail "agent started on a tls+tcp address without --tls-ca"
grep -q "needs the verifier's CA" "$DG_WORK/x.log" || { cat "$DG_WORK/x.log"; dg_fail "no clear error"; }
"$DG_VERIFIER" serve --listen "tcp://127.0.0.1:$(dg_free_port)" --tls-cert "$DG_WORK/verifier.pem" \
	--policies "$DG_WORK/policies" --secrets "$DG_WORK/secrets" --state :memory: \
	--audit-log - >"$DG_WORK/y.log" 2>&1 && dg_fail "verifier took a certificate for a plain address"
grep -q "needs a certificate and key" "$DG_WORK/y.log" || { cat "$DG_WORK/y.log"; dg_fail "no clear error"; }
dg_note "TLS: pinned agent attests; a wrongly pinned one never reaches the verifier; misconfigurations refused"
