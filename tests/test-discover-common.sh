# Shared by the discovery tests (sourced, not run): certificates made with
# openssl at test time, with the current clock.
#   certs_init DIR              a P-256 test CA in DIR (CA_PEM)
#   cert_make NAME SAN [EKU [START END]]
#                               DIR/NAME.pem, issued by the CA; SAN is an
#                               openssl subjectAltName value; START/END are
#                               YYYYMMDDHHMMSSZ for dated certificates
#   cert_b64 NAME               the DER certificate in base64, one line
#   cert_sha256 NAME            its SHA-256 fingerprint as p11mail prints it

CERT_DIR=
CA_PEM=

certs_init() {
  CERT_DIR=$1
  mkdir -p "$CERT_DIR/newcerts"
  : > "$CERT_DIR/index.txt"
  echo 1000 > "$CERT_DIR/serial"
  cat > "$CERT_DIR/ca.cnf" <<CNF
[ ca ]
default_ca = tca
[ tca ]
database = $CERT_DIR/index.txt
new_certs_dir = $CERT_DIR/newcerts
serial = $CERT_DIR/serial
default_md = sha256
policy = anything
unique_subject = no
[ anything ]
commonName = optional
emailAddress = optional
organizationName = optional
CNF
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$CERT_DIR/ca.key" -out "$CERT_DIR/ca.pem" -days 30 \
    -subj "/O=p11mail discovery tests/CN=Discovery Test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || return 1
  CA_PEM=$CERT_DIR/ca.pem
}

cert_make() {
  _name=$1 _san=$2 _eku=${3:-emailProtection}
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyAgreement"
    echo "extendedKeyUsage=$_eku"
    echo "subjectAltName=$_san"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid"
  } > "$CERT_DIR/$_name.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$CERT_DIR/$_name.key" -out "$CERT_DIR/$_name.csr" \
    -subj "/O=p11mail discovery tests/CN=$_name" 2>/dev/null || return 1
  if [ $# -ge 5 ]; then
    set -- -startdate "$4" -enddate "$5"
  else
    set -- -days 20
  fi
  openssl ca -batch -notext -config "$CERT_DIR/ca.cnf" \
    -cert "$CERT_DIR/ca.pem" -keyfile "$CERT_DIR/ca.key" \
    -extfile "$CERT_DIR/$_name.ext" -in "$CERT_DIR/$_name.csr" \
    -out "$CERT_DIR/$_name.pem" "$@" >/dev/null 2>&1
}

cert_b64() {
  openssl x509 -in "$CERT_DIR/$1.pem" -outform DER | openssl base64 -A
}

cert_sha256() {
  openssl x509 -in "$CERT_DIR/$1.pem" -noout -fingerprint -sha256 |
    sed 's/^.*=//'
}
