#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests and prints its connection URL.
#
#   scripts/postgres.sh start DIR   installs Debian's postgresql if missing, creates a cluster
#                                   in DIR (as an unprivileged user when run as root), starts it
#                                   on a free loopback port and prints
#                                   postgres://USER@127.0.0.1:PORT/postgres
#   scripts/postgres.sh stop DIR    stops it (the directory stays; delete it yourself)
#
# The cluster keeps fsync on: the PostgreSQL tests check durability as the SQLite ones do.
set -euo pipefail

action=${1:?usage: scripts/postgres.sh start|stop DIR}
dir=${2:?usage: scripts/postgres.sh start|stop DIR}
pg_user=mimipg

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi

pg_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -z "$bin" ]; then
        echo "scripts/postgres.sh: installing postgresql" >&2
        $SUDO apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
        bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    echo "$bin"
}

# Runs a command as the cluster's owner: PostgreSQL refuses to run as root.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$pg_user" -- "$@"
    else
        "$@"
    fi
}

case "$action" in
start)
    bin=$(pg_bin)
    if [ "$(id -u)" = 0 ]; then
        id "$pg_user" >/dev/null 2>&1 || useradd --system --no-create-home "$pg_user"
        owner=$pg_user
    else
        owner=$(id -un)
    fi
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown "$pg_user" "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$bin/initdb" --pgdata="$dir/data" --username="$owner" --auth=trust \
            --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # Many test databases at once, each with a few connections per provider.
    as_owner "$bin/pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir \
            -c max_connections=400 -c shared_buffers=128MB" start >&2
    echo "postgres://$owner@127.0.0.1:$port/postgres"
    ;;
stop)
    bin=$(pg_bin)
    as_owner "$bin/pg_ctl" --pgdata="$dir/data" --mode=fast --wait stop >&2
    ;;
*)
    echo "usage: scripts/postgres.sh start|stop DIR" >&2
    exit 2
    ;;
esac
