#!/usr/bin/env bash
# swtpm_manufacture.sh CA_DIR STATE_DIR [CERTS_DIR]
#
# Manufacture a TPM as a vendor does: a fresh swtpm state in STATE_DIR with
# RSA-2048 and ECC EKs, their EK certificates in NV (RSA at 0x01c00002) and a
# platform certificate (0x01c08000), all signed by swtpm-localca's CA in CA_DIR
# (created on first use, reused after: several TPMs, one vendor). CERTS_DIR, if
# given, receives the DER EK certificates (ek-rsa2048.crt, ...).
# CA_DIR/bundle.pem is what a verifier's --ek-ca is given: the local CA's
# issuing certificate (an intermediate) and its self-signed root.
#
# Everything swtpm_setup and swtpm_localca read is named explicitly here, so
# neither /etc/swtpm*, ~/.config nor /var/lib/swtpm-localca is used or changed.
set -eu
[ $# -ge 2 ] || { echo "usage: $0 CA_DIR STATE_DIR [CERTS_DIR]" >&2; exit 2; }
ca=$1 state=$2 certs=${3:-}
mkdir -p "$ca" "$state"
localca=$(command -v swtpm_localca) || { echo "$0: swtpm_localca not found (swtpm-tools)" >&2; exit 1; }

if [ ! -f "$ca/swtpm_setup.conf" ]; then
	# swtpm_localca creates the signing key, the issuer certificate and, to
	# sign that, a root CA (swtpm-localca-rootca-*.pem) in statedir when the
	# signing key is missing.
	cat > "$ca/swtpm-localca.conf" <<CONF
statedir = $ca
signingkey = $ca/signkey.pem
issuercert = $ca/issuercert.pem
certserial = $ca/certserial
CONF
	cat > "$ca/swtpm-localca.options" <<CONF
--platform-manufacturer driftgate-test
--platform-version 2.1
--platform-model swtpm
CONF
	cat > "$ca/swtpm_setup.conf" <<CONF
create_certs_tool = $localca
create_certs_tool_config = $ca/swtpm-localca.conf
create_certs_tool_options = $ca/swtpm-localca.options
active_pcr_banks = sha256
CONF
fi

args=(--tpm2 --tpmstate "$state" --create-ek-cert --create-platform-cert --pcr-banks sha256
      --config "$ca/swtpm_setup.conf" --logfile "$state/swtpm_setup.log" --overwrite)
if [ -n "$certs" ]; then
	mkdir -p "$certs"
	args+=(--write-ek-cert-files "$certs")
fi
swtpm_setup "${args[@]}" >/dev/null 2>&1 || { cat "$state/swtpm_setup.log" >&2; exit 1; }
cat "$ca/issuercert.pem" "$ca/swtpm-localca-rootca-cert.pem" > "$ca/bundle.pem"
