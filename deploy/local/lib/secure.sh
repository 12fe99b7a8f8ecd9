# shellcheck shell=bash
# secure: what the secure profile (services.sh --secure) shares between its services: a throwaway
# certificate authority and the certificates it signs, made with openssl, and the random
# passwords of the users. Everything lives in $STATE/tls and $STATE/secrets, is made once and is
# kept until `reset --secure` (which wipes them with the last service). Sourced, never run.
#
# $STATE/tls/
#   ca.pem, ca.key                      the profile's CA (clients trust ca.pem)
#   server.pem, server.key              every server's certificate, SAN IP:127.0.0.1, DNS:localhost
#   client.pem, client.key              the client certificate (CN=orderstream) for mTLS
#   client-expired.pem, .key            signed by the CA, valid only in 2020: an expired certificate
#   untrusted-ca.pem, untrusted-server.pem, .key
#                                       a second CA nobody trusts and a server certificate it signed
# $STATE/secrets/<user>-password        one random password a file (mode 600, no newline)

TLS_DIR=$STATE/tls
SECRETS_DIR=$STATE/secrets
# Days the certificates stay valid: the state of a local profile is thrown away long before.
TLS_DAYS=825

# tls_openssl ARGS...: openssl, its output to $STATE/tls/openssl.log.
tls_openssl() {
  openssl "$@" >>"$TLS_DIR/openssl.log" 2>&1 || die "openssl $1 failed; see $TLS_DIR/openssl.log"
}

# tls_ca NAME CN: a self-signed CA NAME.pem / NAME.key.
tls_ca() {
  tls_openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TLS_DIR/$1.key" -out "$TLS_DIR/$1.pem" \
    -days "$TLS_DAYS" -subj "/O=orderstream local/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}

# tls_leaf CA NAME CN EXTENDED-KEY-USAGE [START END]: NAME.pem / NAME.key signed by CA, with the
# loopback SANs; valid TLS_DAYS from now, or from START to END (YYYYMMDDHHMMSSZ) when given
# (`openssl ca` is the only signer of this OpenSSL 3.0 that takes a start date).
tls_leaf() {
  local ca=$1 name=$2 cn=$3 eku=$4 start=${5:-} end=${6:-}
  local ext=$TLS_DIR/$name.ext
  cat >"$ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$eku
subjectAltName=IP:127.0.0.1,DNS:localhost
EOF
  tls_openssl req -newkey rsa:2048 -nodes -keyout "$TLS_DIR/$name.key" -out "$TLS_DIR/$name.csr" \
    -subj "/O=orderstream local/CN=$cn"
  if [[ -z $start ]]; then
    tls_openssl x509 -req -in "$TLS_DIR/$name.csr" -CA "$TLS_DIR/$ca.pem" -CAkey "$TLS_DIR/$ca.key" \
      -CAcreateserial -days "$TLS_DAYS" -sha256 -extfile "$ext" -out "$TLS_DIR/$name.pem"
  else
    local db=$TLS_DIR/.ca-db
    rm -rf "$db" && mkdir -p "$db/new" && touch "$db/index.txt"
    cat >"$db/ca.cnf" <<EOF
[ca]
default_ca=local
[local]
database=$db/index.txt
new_certs_dir=$db/new
rand_serial=yes
default_md=sha256
policy=any
copy_extensions=none
[any]
commonName=supplied
EOF
    tls_openssl ca -batch -config "$db/ca.cnf" -cert "$TLS_DIR/$ca.pem" -keyfile "$TLS_DIR/$ca.key" \
      -startdate "$start" -enddate "$end" -extfile "$ext" -in "$TLS_DIR/$name.csr" -out "$TLS_DIR/$name.pem" -notext
    rm -rf "$db"
  fi
  rm -f "$TLS_DIR/$name.csr" "$ext"
  chmod 600 "$TLS_DIR/$name.key"
}

# secure_tls: make the CA and every certificate unless they exist (a half-made set is redone).
secure_tls() {
  need_cmd openssl openssl
  [[ -f $TLS_DIR/.complete ]] && return 0
  SVC_TAG=tls info "making a throwaway CA and certificates in $TLS_DIR"
  rm -rf "$TLS_DIR"
  mkdir -p "$TLS_DIR"
  chmod 755 "$TLS_DIR"
  tls_ca ca "orderstream local CA"
  tls_leaf ca server localhost serverAuth,clientAuth
  tls_leaf ca client orderstream clientAuth
  tls_leaf ca client-expired orderstream clientAuth 20200101000000Z 20200102000000Z
  tls_ca untrusted-ca "untrusted CA"
  tls_leaf untrusted-ca untrusted-server localhost serverAuth
  chmod 600 "$TLS_DIR"/*.key
  date -u +%FT%TZ >"$TLS_DIR/.complete"
}

# secret NAME: the path of NAME's password file, made with a random password if missing.
secret() {
  local f=$SECRETS_DIR/$1-password
  if [[ ! -s $f ]]; then
    mkdir -p "$SECRETS_DIR"
    chmod 700 "$SECRETS_DIR"
    (umask 077 && openssl rand -hex 16 | tr -d '\n' >"$f.tmp") && mv "$f.tmp" "$f"
  fi
  printf '%s\n' "$f"
}

# secret_value NAME: NAME's password.
secret_value() { cat "$(secret "$1")"; }

# secure_prepare: what every service of the profile needs before its own install step.
secure_prepare() {
  secure_tls
  local s
  for s in pg kafka kafka-admin clickhouse search; do secret "$s" >/dev/null; done
}
