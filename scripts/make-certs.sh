#!/usr/bin/env bash
# make-certs.sh: a local CA and the certificates of a test or small setup, with the openssl CLI.
#   scripts/make-certs.sh DIR [--host NAME_OR_IP]... [--days N] [--server-cn CN]
# Writes into DIR (created; existing files are replaced):
#   ca.pem ca.key            the CA (tls.client_ca for mTLS; --ca for agentd and harnessctl)
#   server.pem server.key    the controller (tls.cert, tls.key): valid for localhost, 127.0.0.1,
#                            ::1 and every --host
#   agent.pem agent.key      a client certificate for agentd (--cert, --key)
#   admin.pem admin.key      a client certificate for harnessctl (--cert, --key)
# Keys are EC P-256, unencrypted, mode 600. Run it again with the same DIR and the CA is kept
# (only missing CA files are made), so new server certificates stay trusted.
set -euo pipefail

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 ]] || usage
dir=$1; shift
hosts=() days=825 server_cn=harness-controller
while [[ $# -gt 0 ]]; do
  case $1 in
    --host) hosts+=("$2"); shift 2 ;;
    --days) days=$2; shift 2 ;;
    --server-cn) server_cn=$2; shift 2 ;;
    *) usage ;;
  esac
done
mkdir -p "$dir"
umask 077

if [[ ! -f $dir/ca.pem || ! -f $dir/ca.key ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -subj "/CN=harness local CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
fi

# issue NAME CN EXTENSIONS: NAME.key and NAME.pem signed by the CA.
issue() {
  local name=$1 cn=$2 ext=$3
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
    -keyout "$dir/$name.key.tmp" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days "$days" -extfile "$dir/$name.ext" -out "$dir/$name.pem.tmp" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext"
  # Key first, then the certificate, each by rename: a watcher never sees a half-written file.
  mv "$dir/$name.key.tmp" "$dir/$name.key"
  mv "$dir/$name.pem.tmp" "$dir/$name.pem"
}

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for h in "${hosts[@]}"; do
  if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then san+=",IP:$h"; else san+=",DNS:$h"; fi
done
issue server "$server_cn" "subjectAltName=$san
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
issue agent harness-agent "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
issue admin harness-admin "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
rm -f "$dir/ca.srl"
echo "certificates in $dir: ca.pem server.pem agent.pem admin.pem (and their .key)"
