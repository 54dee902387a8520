#!/usr/bin/env bash
# Start the local PostgreSQL, Redis and RabbitMQ if they are down, and wait until they answer.
# For development and CI machines that have them installed (Debian packages); a service that
# is already up, or whose URL points at another host, is left alone.
#
#   demo/services.sh [postgres] [redis] [rabbitmq]     (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
services=("$@")
((${#services[@]})) || services=(postgres redis rabbitmq)

# host:port of a URL such as postgres://user:pw@127.0.0.1:5432/db
host_of() { local rest=${1#*://}; rest=${rest##*@}; rest=${rest%%/*}; echo "${rest%:*}"; }
port_of() { local rest=${1#*://}; rest=${rest##*@}; rest=${rest%%/*}; [[ $rest == *:* ]] && echo "${rest##*:}" || echo "$2"; }
is_local() { [[ $1 == 127.0.0.1 || $1 == localhost || $1 == ::1 || $1 == "[::1]" ]]; }

wait_for() { # name, seconds, check command...
    local name=$1 seconds=$2; shift 2
    for ((i = 0; i < seconds * 2; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "services: $name did not come up within ${seconds}s" >&2
    return 1
}

db_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/console}
pg_host=$(host_of "$db_url") pg_port=$(port_of "$db_url" 5432)
pg_up() { pg_isready -q -h "$pg_host" -p "$pg_port"; }

broker_url=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}
redis_url=${REDIS_URL:-redis://127.0.0.1:6379/1}
redis_host=$(host_of "$redis_url") redis_port=$(port_of "$redis_url" 6379)
redis_up() { [[ $(redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null) == PONG ]]; }

amqp_url=amqp://guest:guest@127.0.0.1:5672//
[[ $broker_url == amqp://* || $broker_url == pyamqp://* ]] && amqp_url=$broker_url
amqp_up() {
    "$PY" -c 'import sys, kombu; kombu.Connection(sys.argv[1], connect_timeout=2).ensure_connection(max_retries=1)' "$amqp_url"
}

for service in "${services[@]}"; do
    case $service in
    postgres)
        if pg_up; then echo "services: PostgreSQL is up"; continue; fi
        is_local "$pg_host" || { echo "services: PostgreSQL at $pg_host:$pg_port is down" >&2; exit 1; }
        echo "services: starting PostgreSQL"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
        wait_for PostgreSQL 30 pg_up
        ;;
    redis)
        if redis_up; then echo "services: Redis is up"; continue; fi
        is_local "$redis_host" || { echo "services: Redis at $redis_host:$redis_port is down" >&2; exit 1; }
        echo "services: starting Redis"
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$redis_port" --save "" \
            --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
        wait_for Redis 15 redis_up
        ;;
    rabbitmq)
        if amqp_up; then echo "services: RabbitMQ is up"; continue; fi
        amqp_host=$(host_of "$amqp_url")
        is_local "$amqp_host" || { echo "services: RabbitMQ at $amqp_host is down" >&2; exit 1; }
        echo "services: starting RabbitMQ (this takes a few seconds)"
        rabbitmq-server -detached
        wait_for RabbitMQ 90 amqp_up
        ;;
    *)
        echo "services: unknown service $service (postgres, redis, rabbitmq)" >&2
        exit 2
        ;;
    esac
done
