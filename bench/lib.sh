# bench/lib.sh - shared shell functions for the bench/ scripts.
#
# Owns: the bench directory layout, installing the public tools the
# benchmarks need (Debian's postfix package for smtp-source and the
# comparison server), a private Postern instance (postern-smtpd and
# postern-qmgr from a build directory) and a private Postfix instance
# (own config dir, queue and data directory; never the system instance),
# a private MariaDB (bench/mariadb.sh, for the mysql: runs), a private
# D-Bus system bus for postern-qmgr's org.postern.Mail1 (bench_bus_start),
# Postfix's smtp-sink as remote SMTP peers (bench_sink_start), process-tree
# memory sampling, and cleanup of everything started.
#
# Everything lives under $BENCH_DIR (default /tmp/postern-bench) and
# listens on 127.0.0.1 ports 20000-20999 only (the scripts use
# 20525-20549).  Source this file; call bench_init first.  Needs root
# (the daemons drop privileges themselves).

BENCH_DIR=${BENCH_DIR:-/tmp/postern-bench}
BENCH_DOMAIN=${BENCH_DOMAIN:-bench.test}
BENCH_USER=${BENCH_USER:-postern-bench}
BENCH_PY=/usr/bin/python3
BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Postfix smtpd does a reverse lookup of every client by default; Postern
# gets the same -o so both do the same work (yes = Postfix's default).
BENCH_PEERNAME_LOOKUP=${BENCH_PEERNAME_LOOKUP:-yes}

PN_DIR=$BENCH_DIR/postern
PN_CONF=$PN_DIR/conf
PN_QUEUE=$PN_DIR/queue
PN_LOG=$PN_DIR/log
PF_DIR=$BENCH_DIR/postfix
PF_CONF=$PF_DIR/conf
PF_QUEUE=$PF_DIR/queue
PF_DATA=$PF_DIR/data
PF_MAIL=$PF_DIR/mail                 # virtual_mailbox_base
PF_MAILDIR=$PF_MAIL/vmail/Maildir    # every recipient lands here
BENCH_HOME=$BENCH_DIR/home/$BENCH_USER
PN_MAILDIR=$BENCH_HOME/Maildir       # home_mailbox = Maildir/

MY_DIR=$BENCH_DIR/mariadb
MY_SOCK=$MY_DIR/mysqld.sock

BUS_DIR=$BENCH_DIR/dbus

PN_SMTPD_PID=
PN_QMGR_PID=
PF_STARTED=
MY_PID=
BUS_PID=
SINK_PIDS=()
BENCH_BG_PIDS=()

bench_log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { bench_log "error: $*"; exit 1; }

# Refuses a bench directory that could be something else than ours.
bench_check_dir() {
    case "$BENCH_DIR" in
    /tmp/?*|/var/tmp/?*|/srv/?*|/home/?*|/root/?*) ;;
    *) [ -n "${BENCH_DIR_ANY:-}" ] || bench_die "BENCH_DIR=$BENCH_DIR: use a path under /tmp, /var/tmp, /srv, /home or /root (or set BENCH_DIR_ANY=1)" ;;
    esac
}

# Resolves the build directory holding postern-smtpd and postern-qmgr.
bench_find_build() {
    local d
    if [ -n "${POSTERN_BUILD_DIR:-}" ]; then
        d=$POSTERN_BUILD_DIR
    elif [ -d ./build-bench ]; then d=./build-bench
    elif [ -d ./build ]; then d=./build
    elif [ -d "$BENCH_SRC/build-bench" ]; then d=$BENCH_SRC/build-bench
    else d=$BENCH_SRC/build
    fi
    PN_SMTPD_BIN=$(cd "$d" 2>/dev/null && pwd)/src/smtpd/postern-smtpd
    PN_QMGR_BIN=$(cd "$d" 2>/dev/null && pwd)/src/qmgr/postern-qmgr
    [ -x "$PN_SMTPD_BIN" ] || bench_die "no postern-smtpd in $d (build it: ninja -C $d, or set POSTERN_BUILD_DIR)"
    [ -x "$PN_QMGR_BIN" ] || bench_die "no postern-qmgr in $d (build it: ninja -C $d, or set POSTERN_BUILD_DIR)"
}

# Resolves mailctl in the build directory (as bench_find_build does).
bench_find_mailctl() {
    local d
    if [ -n "${POSTERN_BUILD_DIR:-}" ]; then d=$POSTERN_BUILD_DIR
    elif [ -d ./build-bench ]; then d=./build-bench
    elif [ -d ./build ]; then d=./build
    elif [ -d "$BENCH_SRC/build-bench" ]; then d=$BENCH_SRC/build-bench
    else d=$BENCH_SRC/build
    fi
    PN_MAILCTL_BIN=$(cd "$d" 2>/dev/null && pwd)/src/mailctl/mailctl
    [ -x "$PN_MAILCTL_BIN" ] || bench_die "no mailctl in $d (build it: ninja -C $d, or set POSTERN_BUILD_DIR)"
}

# Installs the Debian package $1 unless the file $2 it provides exists.
bench_ensure_deb() {
    [ -e "$2" ] && return 0
    bench_log "installing $1"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "$1" >&2 ||
        { timeout 300 apt-get update >&2 &&
          DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y --no-install-recommends "$1" >&2; } ||
        bench_die "cannot install $1"
}

# Installs Debian's postfix (smtp-source, smtp-sink, the comparison
# server) without letting it configure a system instance.
bench_ensure_postfix() {
    if [ -x /usr/sbin/smtp-source ] && [ -x /usr/sbin/postfix ] && [ -x /usr/lib/postfix/sbin/virtual ]; then
        return 0
    fi
    bench_log "installing postfix (for smtp-source and the comparison server)"
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y postfix >&2 ||
        { timeout 300 apt-get update >&2 && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y postfix >&2; } ||
        bench_die "cannot install postfix"
}

# Creates the users: `postern` (smtpd drops to it) and the bench mailbox
# owner with its home (and Maildir) under $BENCH_DIR.
bench_ensure_users() {
    if ! getent passwd postern >/dev/null; then
        useradd -r -M -d /nonexistent -s /usr/sbin/nologin postern || bench_die "useradd postern"
    fi
    if ! getent passwd "$BENCH_USER" >/dev/null; then
        useradd -r -M -d "$BENCH_HOME" -s /usr/sbin/nologin "$BENCH_USER" || bench_die "useradd $BENCH_USER"
    elif [ "$(getent passwd "$BENCH_USER" | cut -d: -f6)" != "$BENCH_HOME" ]; then
        usermod -d "$BENCH_HOME" "$BENCH_USER" || bench_die "usermod $BENCH_USER"
    fi
    BENCH_UID=$(id -u "$BENCH_USER")
    BENCH_GID=$(id -g "$BENCH_USER")
}

# True when something listens on 127.0.0.1:$1.
bench_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits (bounded, $2 seconds) until 127.0.0.1:$1 sends an SMTP greeting.
bench_wait_greeting() {
    local port=$1 limit=${2:-20}
    "$BENCH_PY" - "$port" "$limit" <<'PY'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            if s.recv(512).startswith(b"220"):
                s.sendall(b"QUIT\r\n")
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
}

bench_init() {
    [ "$(id -u)" = 0 ] || bench_die "run as root (the daemons drop privileges themselves)"
    bench_check_dir
    [ -x "$BENCH_PY" ] || bench_die "$BENCH_PY is needed"
    mkdir -p "$BENCH_DIR"
    chmod 755 "$BENCH_DIR"
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Stops everything this script started.  Runs from the EXIT trap.
bench_cleanup() {
    set +e
    local p
    for p in "${BENCH_BG_PIDS[@]}"; do
        bench_kill_wait "$p" 5
    done
    BENCH_BG_PIDS=()
    pn_stop
    bench_bus_stop
    pf_stop
    my_stop
    bench_sinks_stop
    rm -rf "$BENCH_DIR/trash"
}

# Kills a process we started: TERM, wait up to $2 s, then KILL.
bench_kill_wait() {
    local pid=$1 limit=${2:-10} i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        bench_log "pid $pid did not stop on SIGTERM; SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# Recreates a Maildir's new/, cur/ and tmp/ empty.  The old ones are moved
# into $BENCH_DIR/trash and deleted only when the run ends: deleting
# thousands of files just before a point would make every file created in
# it pay for ext4 skipping the recently freed inodes (a cost of the test
# file system, not of the mail system), and fresh directories are what a
# steady-state server sees.  Both systems are treated the same.
bench_clean_maildir() {
    local md=$1 owner=$2 d
    mkdir -p "$BENCH_DIR/trash"
    for d in new cur tmp; do
        [ -d "$md/$d" ] && mv "$md/$d" "$(mktemp -d "$BENCH_DIR/trash/XXXXXX")/"
    done
    mkdir -p "$md"/new "$md"/cur "$md"/tmp
    chown -R "$owner" "$md"
    chmod 700 "$md" "$md"/new "$md"/cur "$md"/tmp
}

# Number of regular files under the given directories (missing ones count 0).
bench_count_files() {
    local n=0 d
    for d in "$@"; do
        [ -d "$d" ] && n=$((n + $(find "$d" -type f 2>/dev/null | wc -l)))
    done
    echo "$n"
}

# ---------------------------------------------------------------- Postern

# Writes a private main.cf: local delivery of @$BENCH_DOMAIN to system
# users, Maildir in the home directory.  Extra "name = value" lines from $@.
# With PN_KEEP_QUEUE set, the queue directory of an earlier run stays.
pn_setup() {
    local port=$1; shift
    [ -n "${PN_KEEP_QUEUE:-}" ] || rm -rf "$PN_QUEUE"
    mkdir -p "$PN_CONF" "$PN_QUEUE" "$PN_LOG" "$PN_DIR/spool" "$(dirname "$BENCH_HOME")" "$BENCH_HOME"
    chown "$BENCH_UID:$BENCH_GID" "$BENCH_HOME"
    chmod 755 "$(dirname "$BENCH_HOME")" "$PN_DIR"
    chmod 700 "$BENCH_HOME"
    bench_clean_maildir "$PN_MAILDIR" "$BENCH_UID:$BENCH_GID"
    chmod 1777 "$PN_DIR/spool"
    {
        cat <<EOF
# private bench instance (generated by bench/lib.sh)
myhostname = mx.$BENCH_DOMAIN
mydomain = $BENCH_DOMAIN
myorigin = \$mydomain
mydestination = $BENCH_DOMAIN
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname ESMTP
queue_directory = $PN_QUEUE
mail_spool_directory = $PN_DIR/spool
home_mailbox = Maildir/
alias_maps =
local_recipient_maps = unix:passwd.byname
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
EOF
        local kv
        for kv in "$@"; do echo "$kv"; done
    } >"$PN_CONF/main.cf"
    PN_PORT=$port
}

# Starts postern-qmgr and postern-smtpd (as root; smtpd drops to postern).
# Extra -o options for smtpd from $@.
pn_start() {
    local -a opts=(-o "smtpd_peername_lookup=$BENCH_PEERNAME_LOOKUP")
    local o
    for o in "$@"; do opts+=(-o "$o"); done
    bench_port_busy "$PN_PORT" && bench_die "port $PN_PORT is in use"
    POSTERN_LOG_STDERR=1 "$PN_QMGR_BIN" --config-dir "$PN_CONF" \
        >"$PN_LOG/qmgr.log" 2>&1 </dev/null &
    PN_QMGR_PID=$!
    POSTERN_LOG_STDERR=1 "$PN_SMTPD_BIN" --config-dir "$PN_CONF" \
        --listen "smtp=127.0.0.1:$PN_PORT" "${opts[@]}" \
        >"$PN_LOG/smtpd.log" 2>&1 </dev/null &
    PN_SMTPD_PID=$!
    if ! bench_wait_greeting "$PN_PORT" 20; then
        tail -5 "$PN_LOG/smtpd.log" "$PN_LOG/qmgr.log" >&2
        bench_die "postern-smtpd does not answer on 127.0.0.1:$PN_PORT"
    fi
    kill -0 "$PN_QMGR_PID" 2>/dev/null || { tail -5 "$PN_LOG/qmgr.log" >&2; bench_die "postern-qmgr exited"; }
    bench_log "postern: smtpd pid $PN_SMTPD_PID on 127.0.0.1:$PN_PORT, qmgr pid $PN_QMGR_PID"
}

pn_stop() {
    bench_kill_wait "$PN_SMTPD_PID" 15
    bench_kill_wait "$PN_QMGR_PID" 15
    PN_SMTPD_PID= PN_QMGR_PID=
}

# Messages still in Postern's queue.
pn_qcount() {
    bench_count_files "$PN_QUEUE/incoming" "$PN_QUEUE/active" "$PN_QUEUE/deferred"
}

# Messages anywhere in Postern's queue, hold/ included.
pn_qcount_all() {
    bench_count_files "$PN_QUEUE/incoming" "$PN_QUEUE/active" "$PN_QUEUE/deferred" "$PN_QUEUE/hold"
}

# ---------------------------------------------------------------- Postfix

# Writes a private Postfix instance: @$BENCH_DOMAIN goes through
# virtual(8) into one Maildir owned by the bench user.  $2 is
# default_process_limit; extra "name = value" lines from $3....  Chroot is
# off (a private queue_directory would need copies of /etc files), logging
# goes to a file through postlogd.  With PF_KEEP_QUEUE set, the queue
# directory of an earlier run stays.
pf_setup() {
    local port=$1 proclimit=${2:-100} kv
    shift; [ $# -gt 0 ] && shift
    [ -n "${PF_KEEP_QUEUE:-}" ] || rm -rf "$PF_QUEUE"
    mkdir -p "$PF_CONF" "$PF_QUEUE" "$PF_DATA" "$PF_MAILDIR"
    chmod 755 "$PF_DIR" "$PF_MAIL" "$PF_MAIL/vmail"
    chown -R "$BENCH_UID:$BENCH_GID" "$PF_MAIL/vmail"
    bench_clean_maildir "$PF_MAILDIR" "$BENCH_UID:$BENCH_GID"
    chown postfix "$PF_DATA"; chmod 700 "$PF_DATA"
    rm -f "$PF_DATA/maillog"
    cat >"$PF_CONF/main.cf" <<EOF
# private bench instance (generated by bench/lib.sh)
compatibility_level = 3.6
queue_directory = $PF_QUEUE
data_directory = $PF_DATA
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.$BENCH_DOMAIN
mydomain = $BENCH_DOMAIN
myorigin = \$mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = \$myhostname ESMTP
smtpd_peername_lookup = $BENCH_PEERNAME_LOOKUP
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
alias_maps =
alias_database =
local_recipient_maps =
biff = no
default_process_limit = $proclimit
maillog_file_prefixes = $BENCH_DIR
maillog_file = $PF_DATA/maillog
virtual_mailbox_domains = $BENCH_DOMAIN
virtual_mailbox_base = $PF_MAIL
virtual_mailbox_maps = static:vmail/Maildir/
virtual_uid_maps = static:$BENCH_UID
virtual_gid_maps = static:$BENCH_GID
virtual_minimum_uid = 1
smtp_dns_support_level = disabled
EOF
    for kv in "$@"; do echo "$kv"; done >>"$PF_CONF/main.cf"
    cat >"$PF_CONF/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$port inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    PF_PORT=$port
}

pf_master_pid() {
    local f=$PF_QUEUE/pid/master.pid p
    [ -s "$f" ] || return 1
    p=$(tr -d ' \n' <"$f")
    kill -0 "$p" 2>/dev/null && echo "$p"
}

pf_start() {
    bench_port_busy "$PF_PORT" && bench_die "port $PF_PORT is in use"
    timeout 60 postfix -c "$PF_CONF" start >"$PF_DIR/start.log" 2>&1 ||
        { cat "$PF_DIR/start.log" >&2; bench_die "postfix did not start"; }
    PF_STARTED=1
    bench_wait_greeting "$PF_PORT" 20 || bench_die "postfix smtpd does not answer on 127.0.0.1:$PF_PORT"
    bench_log "postfix: master pid $(pf_master_pid) on 127.0.0.1:$PF_PORT"
}

pf_stop() {
    [ -n "$PF_STARTED" ] || return 0
    PF_STARTED=
    local pid i
    pid=$(pf_master_pid) || return 0
    timeout 60 postfix -c "$PF_CONF" stop >/dev/null 2>&1 || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    bench_log "postfix master $pid still running; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# Messages still in Postfix's queue.
pf_qcount() {
    bench_count_files "$PF_QUEUE/maildrop" "$PF_QUEUE/incoming" "$PF_QUEUE/active" "$PF_QUEUE/deferred"
}

# Messages anywhere in Postfix's queue, hold/ included.
pf_qcount_all() {
    bench_count_files "$PF_QUEUE/maildrop" "$PF_QUEUE/incoming" "$PF_QUEUE/active" "$PF_QUEUE/deferred" \
        "$PF_QUEUE/hold"
}

# Waits (bounded, $2 s) until the queue counter command $1 says 0.
bench_wait_queue_empty() {
    local fn=$1 limit=${2:-30} i
    for ((i = 0; i < limit * 5; i++)); do
        [ "$($fn)" = 0 ] && return 0
        sleep 0.2
    done
    bench_log "warning: $($fn) messages still queued after ${limit}s"
    return 1
}

# ---------------------------------------------------------------- D-Bus

# Starts a private dbus-daemon as the "system" bus for postern-qmgr, as
# tests/integration/dbus_fixture.py does: its own socket under $BUS_DIR,
# the stock system bus's default-deny policy for method calls (and its
# built-in limits, e.g. 32 MiB per message), root allowed everything, and
# the project's dbus/org.postern.Mail1.conf.  No polkitd: root needs none.
# Exports DBUS_SYSTEM_BUS_ADDRESS (qmgr started afterwards uses it) and
# sets BUS_ADDRESS.
bench_bus_start() {
    command -v dbus-daemon >/dev/null || bench_ensure_deb dbus-daemon /usr/bin/dbus-daemon
    mkdir -p "$BUS_DIR/system.d"
    chmod 755 "$BUS_DIR"
    cp "$BENCH_SRC/dbus/org.postern.Mail1.conf" "$BUS_DIR/system.d/"
    cat >"$BUS_DIR/system.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- private bench bus (generated by bench/lib.sh) -->
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=$BUS_DIR/system_bus_socket</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root"><allow own="*"/><allow send_type="method_call"/></policy>
  <includedir>$BUS_DIR/system.d</includedir>
</busconfig>
EOF
    rm -f "$BUS_DIR/system_bus_socket"
    dbus-daemon --config-file="$BUS_DIR/system.conf" --nofork --nopidfile \
        >"$BUS_DIR/dbus.log" 2>&1 </dev/null &
    BUS_PID=$!
    BUS_ADDRESS=unix:path=$BUS_DIR/system_bus_socket
    export DBUS_SYSTEM_BUS_ADDRESS=$BUS_ADDRESS
    local i
    for ((i = 0; i < 100; i++)); do
        [ -S "$BUS_DIR/system_bus_socket" ] && break
        kill -0 "$BUS_PID" 2>/dev/null || { cat "$BUS_DIR/dbus.log" >&2; bench_die "dbus-daemon exited"; }
        sleep 0.1
    done
    [ -S "$BUS_DIR/system_bus_socket" ] || bench_die "dbus-daemon does not listen on $BUS_DIR/system_bus_socket"
    bench_log "dbus: private system bus pid $BUS_PID at $BUS_ADDRESS"
}

bench_bus_stop() {
    bench_kill_wait "$BUS_PID" 10
    BUS_PID=
}

# Waits (bounded, $1 s) until postern-qmgr owns org.postern.Mail1 on the
# private bus (mailctl status answers).  Needs bench_find_mailctl.
pn_wait_bus_name() {
    local limit=${1:-20} i
    for ((i = 0; i < limit * 10; i++)); do
        "$PN_MAILCTL_BIN" --bus-address "$BUS_ADDRESS" status >/dev/null 2>&1 && return 0
        kill -0 "$PN_QMGR_PID" 2>/dev/null || { tail -5 "$PN_LOG/qmgr.log" >&2; bench_die "postern-qmgr exited"; }
        sleep 0.1
    done
    tail -5 "$PN_LOG/qmgr.log" >&2
    bench_die "postern-qmgr did not take org.postern.Mail1 on $BUS_ADDRESS"
}

# ---------------------------------------------------------------- smtp-sink

# Starts Postfix's smtp-sink(1) on 127.0.0.1:PORT as a remote SMTP peer:
# one event-driven process, every command accepted (250 after the dot),
# as $BENCH_USER (it refuses to run as root), up to 1000 connections at
# once.  With -c it writes "sess=N quit=N mesg=N\r" to stdout whenever a
# message ends (at the final dot) or a session closes; stdout is appended
# to COUNTFILE, so the last record there is its running count (messages
# since it started).  Warnings (lost connection, timeouts) go to
# COUNTFILE.log.  Appends the pid to SINK_PIDS.
#   bench_sink_start PORT COUNTFILE
bench_sink_start() {
    local port=$1 out=$2 pid
    bench_port_busy "$port" && bench_die "port $port is in use"
    : >"$out"
    /usr/sbin/smtp-sink -c -m 1000 -u "$BENCH_USER" "127.0.0.1:$port" 1024 \
        >>"$out" 2>"$out.log" </dev/null &
    pid=$!
    SINK_PIDS+=("$pid")
    bench_wait_greeting "$port" 20 || { cat "$out.log" >&2; bench_die "smtp-sink does not answer on 127.0.0.1:$port"; }
}

bench_sinks_stop() {
    local p
    for p in "${SINK_PIDS[@]}"; do
        bench_kill_wait "$p" 5
    done
    SINK_PIDS=()
}

# ---------------------------------------------------------------- MariaDB
# my_start, my_stop, my_sql, my_selects, my_cpu: bench/mariadb.sh
source "$BENCH_SRC/bench/mariadb.sh"

# ---------------------------------------------------------------- measuring

# Runs a helper from $BENCH_PYLIB in the background and waits for it, so
# that SIGINT/SIGTERM reach this shell's traps at once (the cleanup then
# stops the helper).  Its stdout goes to the file $1.
#   bench_py OUTFILE SCRIPT.py ARGS...
bench_py() {
    local out=$1 script=$2 pid rc=0
    shift 2
    "$BENCH_PY" "$BENCH_PYLIB/$script" "$@" >"$out" &
    pid=$!
    BENCH_BG_PIDS+=("$pid")
    wait "$pid" || rc=$?
    local -a keep=() p
    for p in "${BENCH_BG_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    BENCH_BG_PIDS=("${keep[@]}")
    return $rc
}

# One throughput point.  Runs smtp-source against 127.0.0.1:PORT and polls
# MAILDIR/new every 20 ms until COUNT files are there; meanwhile samples
# the summed PSS of the process trees under ROOT_PIDS every $MEM_INTERVAL
# seconds (default 0.5: smaps_rollup of Postfix's ~45 processes costs
# ~10 ms of CPU, 10 % of a core at 100 ms, taken from the server).
# Prints: "<end-to-end s, -1 if not all arrived> <smtp-source s>
# <delivered> <peak PSS KiB> <peak RSS KiB> <smtp-source rc> <server CPU s>"
# into OUTFILE.
# (Call it directly, not inside $(...): a shell waiting for a command
# substitution runs its traps only after it ends.)
#   bench_throughput_point OUTFILE PORT SESSIONS COUNT SIZE MAILDIR TIMEOUT RCPT ROOT_PIDS...
bench_throughput_point() {
    bench_py "$1" throughput_point.py "${@:2}" || true
}

# Holds N idle sessions (greeted, then silent) on 127.0.0.1:PORT and
# appends one table row with the memory of the trees under ROOT_PIDS to
# OUTFILE.
#   bench_idle_row OUTFILE PORT N LABEL ROOT_PIDS...
bench_idle_row() {
    local out=$1.tmp
    bench_py "$out" idle_hold.py "${@:2}" || true
    cat "$out" >>"$1"
}

# Writes the Python helpers used by the measuring functions.
bench_write_pylib() {
    export BENCH_PYLIB=$BENCH_DIR/pylib
    mkdir -p "$BENCH_PYLIB"
    cat >"$BENCH_PYLIB/benchmem.py" <<'PY'
"""Memory of process trees from /proc (PSS from smaps_rollup, RSS)."""
import os

def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids

def children(pid):
    """Children of all threads of pid (CONFIG_PROC_CHILDREN); None if unsupported."""
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out.extend(int(x) for x in f.read().split())
        except FileNotFoundError:
            if not os.path.exists("/proc/%d/task/%s" % (pid, t)):
                continue
            return None
        except OSError:
            continue
    return out

def tree(roots):
    """The roots and all their descendants."""
    kids = None
    seen, stack = set(), list(roots)
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        c = children(p) if kids is None else kids.get(p, [])
        if c is None:
            kids = children_map()
            c = kids.get(p, [])
        stack.extend(c)
    return sorted(seen)

def proc_mem(pid):
    """(Pss KiB, Rss KiB) of one process; (0, 0) when gone."""
    pss = rss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss

def tree_mem(roots):
    """Summed (Pss KiB, Rss KiB) of the roots and all their descendants."""
    pss = rss = 0
    for p in tree(roots):
        a, b = proc_mem(p)
        pss += a
        rss += b
    return pss, rss

def tree_cpu(roots):
    """CPU seconds (user + system, including reaped children) of the roots
    and all their descendants."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree(roots):
        try:
            with open("/proc/%d/stat" % p) as f:
                s = f.read()
        except OSError:
            continue
        fields = s[s.rfind(")") + 2:].split()
        total += sum(int(x) for x in fields[11:15])   # utime stime cutime cstime
    return total / hz

class MaildirCounter:
    """Counts files arriving in a directory (inotify IN_CREATE/IN_MOVED_TO,
    so a poll costs one read(), not a listing of thousands of names);
    falls back to listing the directory if inotify is unavailable or its
    queue overflowed.  count() = files present at start + arrivals."""
    IN_CREATE, IN_MOVED_TO, IN_Q_OVERFLOW, IN_ISDIR, IN_NONBLOCK = 0x100, 0x80, 0x4000, 0x40000000, 0x800

    def __init__(self, path):
        import ctypes, ctypes.util
        self.path, self.fd = path, -1
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = libc.inotify_init1(self.IN_NONBLOCK)
            if fd >= 0 and libc.inotify_add_watch(fd, path.encode(), self.IN_CREATE | self.IN_MOVED_TO) >= 0:
                self.fd = fd
            elif fd >= 0:
                os.close(fd)
        except (OSError, AttributeError):
            pass
        self.n = len(os.listdir(path))

    def count(self):
        import struct
        if self.fd < 0:
            return len(os.listdir(self.path))
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            off = 0
            while off + 16 <= len(buf):
                _, mask, _, ln = struct.unpack_from("iIII", buf, off)
                off += 16 + ln
                if mask & self.IN_Q_OVERFLOW:
                    os.close(self.fd)
                    self.fd = -1
                    return len(os.listdir(self.path))
                if mask & (self.IN_CREATE | self.IN_MOVED_TO) and not mask & self.IN_ISDIR:
                    self.n += 1
        return self.n

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

def status_kib(pid, field):
    """A VmXXX field of /proc/PID/status in KiB (0 when missing)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
PY
    cat >"$BENCH_PYLIB/throughput_point.py" <<'PY'
"""One throughput point (see bench_throughput_point in lib.sh)."""
import atexit, os, signal, subprocess, sys, tempfile, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
from benchmem import tree_cpu, tree_mem, MaildirCounter
port, sessions, count, size, maildir, limit, rcpt = sys.argv[1:8]
roots = [int(p) for p in sys.argv[8:]]
count, limit = int(count), float(limit)
every = max(1, round(float(os.environ.get("MEM_INTERVAL", "0.5")) / 0.02))
new = os.path.join(maildir, "new")
cmd = ["/usr/sbin/smtp-source", "-s", sessions, "-m", str(count), "-l", size,
       "-M", "client.bench.test", "-f", "sender@bench.test", "-t", rcpt,
       "127.0.0.1:" + port]
peak_pss = peak_rss = 0
cpu0 = tree_cpu(roots)
t0 = time.monotonic()
counter = MaildirCounter(new)
errf = tempfile.TemporaryFile()
src = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf)
atexit.register(lambda: src.poll() is None and src.kill())
src_done = None
n = 0
tick = 0
while True:
    n = counter.count()
    if n >= count:
        counter.close()              # from here on: list the directory
        n = len(os.listdir(new))
    if src_done is None and src.poll() is not None:
        src_done = time.monotonic() - t0
    if n >= count:
        break
    if time.monotonic() - t0 > limit:
        break
    if src_done is not None and src.returncode != 0 and time.monotonic() - t0 - src_done > 5:
        break
    if tick % every == 0:
        pss, rss = tree_mem(roots)
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
    tick += 1
    time.sleep(0.02)
elapsed = time.monotonic() - t0
cpu = tree_cpu(roots) - cpu0
counter.close()
n = len(os.listdir(new))   # the real count, not the event tally
ok = n >= count
pss, rss = tree_mem(roots)
peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
if src_done is None:
    try:
        src.wait(timeout=30)
    except subprocess.TimeoutExpired:
        src.kill(); src.wait()
    src_done = time.monotonic() - t0
errf.seek(0)
err = errf.read().decode(errors="replace").strip()
if src.returncode != 0 and err:
    print("smtp-source: " + err.splitlines()[-1], file=sys.stderr)
print("%.3f %.3f %d %d %d %d %.2f" % (elapsed if ok else -1, src_done, n, peak_pss, peak_rss,
                                     src.returncode, cpu))
PY
    cat >"$BENCH_PYLIB/idle_hold.py" <<'PY'
"""Idle sessions (see bench_idle_row in lib.sh)."""
import os, selectors, signal, socket, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
from benchmem import tree, tree_mem
port, n, label = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
roots = [int(p) for p in sys.argv[4:]]
settle = float(os.environ.get("SETTLE", "2"))
time.sleep(0.5)
before_pss, before_rss = tree_mem(roots)
before_procs = len(tree(roots))

sel = selectors.DefaultSelector()
held, pending, opened, failed, sample = [], {}, 0, 0, None
t0 = time.monotonic()
end = t0 + 120
while (opened < n or pending) and time.monotonic() < end:
    while opened < n and len(pending) < 100:      # at most 100 connects in flight
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_READ)
        pending[s] = b""
        opened += 1
    for key, _ in sel.select(0.5):
        s = key.fileobj
        try:
            data = s.recv(512)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        buf = pending[s] + data
        if data and b"\n" not in buf:
            pending[s] = buf
            continue
        sel.unregister(s)
        del pending[s]
        if buf.startswith(b"220"):
            held.append(s)                          # greeted: now stay silent
        else:
            failed += 1
            sample = sample or buf[:80]
            s.close()
open_s = time.monotonic() - t0
for s in list(pending):
    failed += 1
    s.close()
time.sleep(settle)
# still open and silent: no unsolicited reply (421) and no close
alive = 0
for s in held:
    try:
        s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        alive += 1
    except OSError:
        pass
pss, rss = tree_mem(roots)
procs = len(tree(roots))
k = max(len(held), 1)
print("%-8s %8d %7d %6d %10.1f %10.1f %10.1f %11.1f %10.1f %8.1f" % (
    label, len(held), alive, procs, before_pss / 1024, pss / 1024, (pss - before_pss) / 1024,
    (pss - before_pss) / k, rss / 1024, open_s), flush=True)
if failed:
    print("%s: %d sessions failed%s" % (label, failed, (", e.g. %r" % sample) if sample else ""),
          file=sys.stderr)
for s in held:
    s.close()
PY
}

# Prints the median of the numbers on stdin ("-" when there are none).
bench_median() {
    "$BENCH_PY" -c '
import statistics, sys
v = [float(x) for x in sys.stdin.read().split() if float(x) >= 0]
print("%.1f" % statistics.median(v) if v else "-")'
}
