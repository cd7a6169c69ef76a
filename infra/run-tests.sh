#!/usr/bin/env bash
# Runs the test tiers. Usage: infra/run-tests.sh all|quick|integration|e2e [extra pytest args]
#   quick        unit and web tests on SQLite, in parallel (pytest-xdist)
#   integration  real PostgreSQL, Redis, Celery worker processes and SMTP; fault tests; browser journeys
# With CI=true a missing PostgreSQL or Redis fails the run; it is never skipped.
set -uo pipefail
cd "$(dirname "$0")/.."

tier="${1:-all}"; shift || true
PYTEST=.venv/bin/pytest
results=var/test-results
mkdir -p "$results"
rm -f "$results"/*.xml
export PYTHONDONTWRITEBYTECODE=1

ensure_services() {
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        echo "run-tests: PostgreSQL is not answering on 127.0.0.1:5432; trying to start it"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start 2>/dev/null || true
        for _ in $(seq 1 20); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
    fi
    if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        echo "run-tests: Redis is not answering on 127.0.0.1:6379; trying to start it"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null 2>&1 || true
        for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
    fi
    # The integration conftest checks both again and fails (never skips) when one is missing.
}

status=0
run_tier() {
    local name="$1"; shift
    echo
    echo "=== $name tier ==="
    local start=$SECONDS
    "$PYTEST" "$@" --junitxml="$results/$name.xml"
    local rc=$?
    echo "=== $name tier finished in $((SECONDS - start))s (exit $rc) ==="
    # Exit 5 means no test ran: a tier that runs nothing is a failure, not a pass.
    [ "$rc" -ne 0 ] && status=1
}

case "$tier" in
    quick)
        run_tier quick -m "not integration and not e2e and not fault" -n "${XDIST:-2}" "$@" ;;
    integration|e2e)
        ensure_services
        run_tier integration -m "integration or e2e or fault" -p no:xdist "$@" ;;
    all)
        run_tier quick -m "not integration and not e2e and not fault" -n "${XDIST:-2}" "$@"
        ensure_services
        run_tier integration -m "integration or e2e or fault" -p no:xdist "$@" ;;
    *)
        echo "usage: $0 all|quick|integration|e2e" >&2; exit 2 ;;
esac

.venv/bin/python infra/test_summary.py "$results"/*.xml || status=1
exit "$status"
