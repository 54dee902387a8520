#!/usr/bin/env bash
# The demo (`make demo` runs this after installing dependencies and starting services):
# prepare the database, then run the console's web server and collector next to a demo worker
# and a demo traffic feed. Ctrl-C (or SIGTERM) stops all four; so does any one of them dying.
#
# Settings come from the environment, then from .env (values already set win).
# HOST, PORT and RATE choose where the web server listens and the traffic's tasks per second.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
RATE=${RATE:-5}

load_env() { # KEY=value lines; comments and blank lines skipped; the environment wins
    local line key value
    while IFS= read -r line || [[ -n $line ]]; do
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
        key=${BASH_REMATCH[2]} value=${BASH_REMATCH[3]}
        [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]] && value=${BASH_REMATCH[1]}
        [[ -n $value ]] || continue
        [[ -v $key ]] || export "$key=$value"
    done <"$1"
}
[[ -f .env ]] && load_env .env
# DEBUG stays off, so the demo needs a secret key: made once and kept in .env (gitignored).
if [[ -z ${DJANGO_SECRET_KEY:-} && ${DJANGO_DEBUG:-false} != true ]]; then
    DJANGO_SECRET_KEY=$("$VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(50))')
    export DJANGO_SECRET_KEY
    [[ -s .env && -n $(tail -c1 .env) ]] && echo >>.env
    (umask 077 && echo "DJANGO_SECRET_KEY=$DJANGO_SECRET_KEY" >>.env)
    echo "demo: added a new DJANGO_SECRET_KEY to .env"
fi
export PATH="$PWD/$VENV/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

step "database"
python manage.py ensure_database
python manage.py migrate --noinput
step "static files"
python manage.py collectstatic --noinput --verbosity 0
step "sign-in user"
credentials=$(python manage.py create_demo_user)
echo "$credentials"
credentials=${credentials#*: }

pids=()
start() { # name, command...
    local name=$1; shift
    # Each line prefixed with its process' name. setsid keeps the terminal's Ctrl-C away from
    # the children: they get one SIGTERM from stop_all, which means a warm shutdown for the
    # worker (a second signal would make it cold). $! stays the command itself.
    # The prefixing sed ignores Ctrl-C too, or it would die first and take the output with it.
    setsid "$@" > >(trap '' INT && exec sed -u "s/^/[$name] /") 2>&1 &
    pids+=("$!")
}

stopping=0
stop_all() {
    ((stopping)) && return
    stopping=1
    step "stopping (the worker finishes the tasks it is running first)"
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop_all; echo "demo: stopped"; exit 0' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all; exit 129' HUP

step "starting the demo worker, the collector, the web server and demo traffic"
start worker celery -A console worker -E -Q default,slow -c 2 --loglevel=INFO -n 'demo@%h'
start collector python manage.py collect
start web uvicorn console.asgi:application --host "$HOST" --port "$PORT"
start traffic python manage.py demo_traffic --rate "$RATE"

sleep 2
cat <<EOF

  Celery console demo: open http://$HOST:$PORT/
  and sign in with $credentials

  Ctrl-C stops everything.
EOF

# Whichever process exits first (crashed, or a port already taken) ends the demo.
status=0
wait -n || status=$?
if ((!stopping)); then
    echo "demo: a process exited (status $status); stopping the others" >&2
    stop_all
    exit $((status ? status : 1))
fi
