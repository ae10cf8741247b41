# bench/mariadb.sh - a private MariaDB for the bench/ scripts (sourced by
# lib.sh): its own data directory, socket and port under $BENCH_DIR,
# started with --no-defaults so the system's configuration and any system
# instance stay untouched; SQL as the instance's root over the socket; the
# counters the benchmarks report (SELECTs run, mariadbd CPU).  Stopped by
# bench_cleanup through my_stop.


# Creates a private MariaDB data directory and starts mariadbd on
# 127.0.0.1:$1 and $MY_SOCK (never the system instance: --no-defaults, own
# datadir), as tests/integration/test_mysql.py does.
my_start() {
    MY_PORT=$1
    bench_port_busy "$MY_PORT" && bench_die "port $MY_PORT is in use"
    rm -rf "$MY_DIR"
    mkdir -p "$MY_DIR"
    chmod 755 "$MY_DIR"
    timeout 120 mariadb-install-db --no-defaults --datadir="$MY_DIR/data" --user=root \
        --auth-root-authentication-method=socket --skip-test-db --innodb-log-file-size=8M \
        >"$MY_DIR/install.log" 2>&1 || { tail -5 "$MY_DIR/install.log" >&2; bench_die "mariadb-install-db failed"; }
    mariadbd --no-defaults --datadir="$MY_DIR/data" --socket="$MY_SOCK" --port="$MY_PORT" \
        --bind-address=127.0.0.1 --user=root --pid-file="$MY_DIR/mysqld.pid" \
        --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=64M \
        --innodb-log-file-size=8M --max-connections=500 \
        >"$MY_DIR/mariadbd.log" 2>&1 </dev/null &
    MY_PID=$!
    local i
    for ((i = 0; i < 600; i++)); do
        kill -0 "$MY_PID" 2>/dev/null || { tail -5 "$MY_DIR/mariadbd.log" >&2; bench_die "mariadbd exited"; }
        mariadb-admin --no-defaults --socket="$MY_SOCK" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    [ "$i" -lt 600 ] || bench_die "mariadbd does not answer on $MY_SOCK"
    bench_log "mariadb: mariadbd pid $MY_PID on 127.0.0.1:$MY_PORT"
}

my_stop() {
    bench_kill_wait "$MY_PID" 30
    MY_PID=
}

# Runs SQL from stdin as the database's root (socket authentication).
my_sql() {
    mariadb --no-defaults --socket="$MY_SOCK" --batch --skip-column-names "$@"
}

# SELECT statements the server has run so far (Com_select).
my_selects() {
    echo "SHOW GLOBAL STATUS LIKE 'Com_select'" | my_sql | awk '{print $2}'
}

# CPU seconds (user + system) mariadbd has used so far.
my_cpu() {
    "$BENCH_PY" -c '
import os, sys
s = open("/proc/%s/stat" % sys.argv[1]).read()
print("%.2f" % (sum(int(x) for x in s[s.rfind(")") + 2:].split()[11:13]) / os.sysconf("SC_CLK_TCK")))' "$MY_PID"
}
