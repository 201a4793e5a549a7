#!/bin/sh
# Installs the Debian 12 packages p11mail needs to build and to run its
# tests and demo.  Idempotent: packages already present are left alone, and
# nothing is fetched when all of them are there.  Run as root.
set -eu

packages="
  build-essential autoconf automake libtool pkg-config git
  libssl-dev libp11-kit-dev libgmime-3.0-dev libsqlite3-dev
  libcurl4-openssl-dev libldns-dev libldap2-dev
  openssl p11-kit softhsm2 opensc opensc-pkcs11 libnss3 libnss3-tools gpgsm
  libengine-pkcs11-openssl sqlite3 clang-format valgrind procps bsdutils time
  python3 jq
  postfix dovecot-imapd dovecot-pop3d slapd ldap-utils
  bind9 bind9-dnsutils pcscd vsmartcard-vpcd iproute2 util-linux mount
"

missing=""
for p in $packages; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done

if [ -z "$missing" ]; then
  echo "deps: all $(echo $packages | wc -w) packages are installed"
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "deps: missing packages:$missing" >&2
  echo "deps: run this script as root to install them" >&2
  exit 1
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure itself: the tests bring their own config.
echo "postfix postfix/main_mailer_type select No configuration" |
  debconf-set-selections
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing >/dev/null
echo "deps: done"
