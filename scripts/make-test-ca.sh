#!/usr/bin/env bash
# Makes a farm CA and the certificates a farm runs mutual TLS with (tls+tcp://), using openssl
# from Debian (apt-get install openssl).
#
#   scripts/make-test-ca.sh OUTDIR [HOSTNAME…]
#
# Writes into OUTDIR (created if missing; existing files are overwritten):
#   ca.crt, ca.key                  the farm CA (keep ca.key offline; every side gets ca.crt)
#   coordinator.crt, coordinator.key  the coordinator's certificate, with a SAN for every
#                                   HOSTNAME (default: localhost 127.0.0.1)
#   worker.crt, worker.key          a certificate for workers
#   client.crt, client.key          a certificate for clients (submit, status, wait, …)
#
# Then, e.g.:
#   atelier coordinator --listen tls+tcp://0.0.0.0:7733 --data farm \
#       --tls-ca OUTDIR/ca.crt --tls-cert OUTDIR/coordinator.crt --tls-key OUTDIR/coordinator.key
#   atelier worker --coordinator tls+tcp://farm.lan:7733 \
#       --tls-ca OUTDIR/ca.crt --tls-cert OUTDIR/worker.crt --tls-key OUTDIR/worker.key
#
# Keys are P-256 EC, unencrypted (mode 600): nng reads them at startup with no passphrase prompt.
# An IP address gets both an IP and a DNS SAN of the same text, because mbed TLS 2.28 (nng's TLS
# engine on Debian) checks the server name against DNS names only.
# It is a test CA: one command, no revocation list. For production, issue the same kinds of
# certificates from your own CA (serverAuth for the coordinator, clientAuth for the rest).
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
command -v openssl >/dev/null || { echo "make-test-ca.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }
out="$1"; shift
hosts=("$@")
[ ${#hosts[@]} -gt 0 ] || hosts=(localhost 127.0.0.1)
mkdir -p "$out"
umask 077
days=825

ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ec_key "$out/ca.key"
openssl req -x509 -new -key "$out/ca.key" -sha256 -days 3650 -subj "/CN=Atelier farm CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$out/ca.crt"

san=""
for h in "${hosts[@]}"; do
    if [[ "$h" =~ ^[0-9.]+$ || "$h" == *:* ]]; then san+="IP:$h,DNS:$h,"; else san+="DNS:$h,"; fi
done
san="${san%,}"

# leaf NAME CN EXTENDED_KEY_USAGE [SAN]
leaf() {
    local name="$1" cn="$2" eku="$3" alt="${4:-}"
    ec_key "$out/$name.key"
    openssl req -new -key "$out/$name.key" -subj "/CN=$cn" -out "$out/$name.csr"
    {
        echo "basicConstraints=critical,CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyAgreement"
        echo "extendedKeyUsage=$eku"
        [ -z "$alt" ] || echo "subjectAltName=$alt"
    } > "$out/$name.ext"
    openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
        -sha256 -days "$days" -extfile "$out/$name.ext" -out "$out/$name.crt" 2>/dev/null
    rm -f "$out/$name.csr" "$out/$name.ext"
}

leaf coordinator "${hosts[0]}" "serverAuth,clientAuth" "$san"
leaf worker "atelier-worker" "clientAuth"
leaf client "atelier-client" "clientAuth"
rm -f "$out/ca.srl"
chmod 644 "$out"/*.crt
echo "make-test-ca.sh: CA and certificates for ${hosts[*]} in $out" >&2
