# tools/lib.sh - shared by tools/run and tools/test: Debian packages and
# system accounts.  Source it; it defines functions only.

# What building and testing Postern needs on Debian 12 (systemd for
# systemd-socket-activate, systemd-analyze, the journald and systemd.pc,
# busctl and systemd-stdio-bridge; systemd-container for systemd-nspawn in
# the system tier; procps for pgrep and the units' /bin/kill; passwd for
# useradd; libglib2.0-dev-bin for gdbus-codegen, libglib2.0-bin for gdbus;
# dbus-daemon and polkitd for the private system bus of the D-Bus tests;
# util-linux for unshare and setpriv; python3-gi for the D-Bus clients
# of the tests; openssl for the test certificates and libnet-ssleay-perl
# for swaks --tls; sasl2-bin (saslpasswd2, saslauthd) and the SASL PLAIN,
# LOGIN and sql plugins for the AUTH tests; fetchmail, a real POP3 client;
# iproute2 for the network namespaces and veth pairs of the remote-host
# tests and postfix for their smtp-sink, installed without a system
# instance: see postern_install_postfix).
POSTERN_PACKAGES=(meson ninja-build gcc libc6-dev pkg-config libsystemd-dev libglib2.0-dev libssl-dev
                  libsasl2-dev libmariadb-dev libpcre2-dev libcdb-dev mariadb-server python3 python3-pytest swaks systemd passwd
                  dnsmasq-base bind9-dnsutils systemd-container procps libglib2.0-dev-bin libglib2.0-bin
                  dbus-daemon polkitd util-linux python3-gi gir1.2-glib-2.0 bash-completion
                  openssl libnet-ssleay-perl sasl2-bin libsasl2-modules libsasl2-modules-sql
                  fetchmail iproute2 postfix)

postern_need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$1: run as root (it installs packages, creates accounts, and the daemons drop privileges)" >&2
    exit 2
  fi
}

# True when the package is installed (not merely known or half-removed).
postern_pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Installs whatever of POSTERN_PACKAGES (plus any arguments) is missing;
# runs apt-get update only when something is.
postern_install_packages() {
  local missing=() p want_postfix=
  for p in "${POSTERN_PACKAGES[@]}" "$@"; do
    if [ "$p" = postfix ]; then
      postern_pkg_installed postfix || want_postfix=1
    else
      postern_pkg_installed "$p" || missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && [ -z "$want_postfix" ] && return 0
  echo "installing: ${missing[*]}${want_postfix:+ postfix}"
  apt-get update
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi
  if [ -n "$want_postfix" ]; then
    postern_install_postfix
  fi
}

# Debian's postfix, for smtp-sink only (the tests run it themselves):
# debconf preseeded to "No configuration" (no main.cf, no system
# instance), and service starts refused while it installs (its postinst
# always calls `invoke-rc.d postfix start`, which would start a system
# Postfix on port 25 if an /etc/postfix/main.cf were there), through a
# policy-rc.d of ours unless the machine has one already.
postern_install_postfix() {
  local policy=/usr/sbin/policy-rc.d ours= rc=0
  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# tools/lib.sh: no service starts while postfix is installed\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    ours=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix || rc=$?
  if [ -n "$ours" ]; then
    rm -f "$policy"
  fi
  return $rc
}

# postern_ensure_user NAME HOME SHELL [system]: creates the account if missing.
postern_ensure_user() {
  local name=$1 home=$2 shell=$3 system=${4:-}
  id "$name" >/dev/null 2>&1 && return 0
  if [ -n "$system" ]; then
    useradd -r -M -d "$home" -s "$shell" "$name"
  else
    useradd -M -d "$home" -s "$shell" "$name"
  fi
}

# The unprivileged account smtpd drops to (main.cf mail_owner, default postern).
postern_ensure_mail_owner() {
  postern_ensure_user postern /nonexistent /usr/sbin/nologin system
}

# The integration tests' recipients; tests/integration/conftest.py expects
# these homes (and fixes them if they differ).
postern_ensure_test_users() {
  mkdir -p /tmp/postern-test-home
  chmod 755 /tmp/postern-test-home
  postern_ensure_user mailtest /tmp/postern-test-home/mailtest /bin/sh
  postern_ensure_user mailtest2 /tmp/postern-test-home/mailtest2 /bin/sh
  # polkit/50-postern-mailadm.rules.example grants this group everything;
  # the D-Bus tests expect mailtest2 in it and mailtest not.
  getent group postern-admin >/dev/null || groupadd -r postern-admin
  id -nG mailtest2 | tr ' ' '\n' | grep -qx postern-admin || usermod -aG postern-admin mailtest2
}

# postern_meson_setup DIR OPTIONS...: configures DIR, or reconfigures it
# with OPTIONS when it already exists.
postern_meson_setup() {
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@"
  fi
}
