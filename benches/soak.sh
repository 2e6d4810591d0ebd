#!/usr/bin/env bash
# Soak run for Dravo (not in CI), on loopback only. See benches/README.md.
#
# Runs a release `dravo serve` for DURATION under mixed load (wrk rotating over
# GET /v1/oauth-apps, GET /v1/oauth/x/start, GET /v1/accounts and
# GET /v1/accounts/{id}/access-token) while its background refresher is kept busy: SOAK_ACCOUNTS
# accounts connected through a fake X (examples/fake_provider.rs, the test suite's fake as a
# process) are due at every refresher pass (refresh.skew_seconds = 3600 against X's 2-hour
# tokens makes every token "about to expire"; refresh.interval_seconds = 1), so the refresher
# renews each of them about once a second against the fake, writing the rotated tokens and
# their events. Every SAMPLE_EVERY seconds it records dravo's VmRSS, its open file descriptors
# (/proc/<pid>/fd) and the fake's token-endpoint calls so far; at the end it prints the
# samples and whether RSS and descriptors stayed flat: the largest sample of the last minute
# within 10% of the largest of the first minute.
#
# Environment: DURATION (10m; wrk's syntax: 90s, 10m, 1h), SAMPLE_EVERY (10, seconds),
# SOAK_ACCOUNTS (100), THREADS (2), CONNECTIONS (64), LOG_LEVEL (warn: RUST_LOG for dravo, so a
# long run does not write gigabytes of request log), STRICT=1 (exit 1 when not flat or on
# errors), KEEP_TMP=1 (keep the temp dir: database, logs, samples).
set -euo pipefail
# The build profile measured: `dist` (what is deployed: fat LTO) unless PROFILE says otherwise.
PROFILE=${PROFILE:-dist}

DURATION=${DURATION:-10m}
SAMPLE_EVERY=${SAMPLE_EVERY:-10}
SOAK_ACCOUNTS=${SOAK_ACCOUNTS:-100}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
LOG_LEVEL=${LOG_LEVEL:-warn}
STRICT=${STRICT:-0}
KEEP_TMP=${KEEP_TMP:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'soak.sh: %s\n' "$*" >&2; exit 1; }

seconds_of() { # 90, 90s, 10m, 1h -> seconds
    local v=$1
    case $v in
        *h) echo $((${v%h} * 3600)) ;;
        *m) echo $((${v%m} * 60)) ;;
        *s) echo "${v%s}" ;;
        *) echo "$v" ;;
    esac
}
TOTAL_S=$(seconds_of "$DURATION")
[[ $TOTAL_S =~ ^[0-9]+$ && $TOTAL_S -ge 60 ]] || die "DURATION must be at least 60 seconds (got $DURATION)"

# --- tools ----------------------------------------------------------------------------------
missing=()
for tool in wrk curl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "need root or sudo to install: ${missing[*]}"
        SUDO=sudo
    fi
    log "installing ${missing[*]} (Debian packages)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- build ----------------------------------------------------------------------------------
log "cargo build --profile $PROFILE --bin dravo --example fake_provider"
cargo build --profile "$PROFILE" --bin dravo --example fake_provider
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
TARGET_DIR=${TARGET_DIR:-$ROOT/target}
DRAVO="$TARGET_DIR/$PROFILE/dravo"
FAKE="$TARGET_DIR/$PROFILE/examples/fake_provider"
[[ -x $DRAVO && -x $FAKE ]] || die "$PROFILE binaries not found under $TARGET_DIR/$PROFILE"

# --- processes and cleanup ------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/dravo-soak.XXXXXX")
PIDS=()
cleanup() {
    local pid
    { exec 7>&-; } 2>/dev/null || true
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $KEEP_TMP == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

wait_for() { # seconds, description, command...
    local tries=$(($1 * 10)) what=$2
    shift 2
    for _ in $(seq 1 "$tries"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "$what"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f", kb / 1024}'; }

# --- the fake provider ----------------------------------------------------------------------
# It reads commands on a FIFO (kept open on fd 7) and answers in fake.out.
mkfifo "$TMP/fake.in"
"$FAKE" soak-client soak-secret <"$TMP/fake.in" >"$TMP/fake.out" 2>"$TMP/fake.err" &
PIDS+=("$!")
exec 7>"$TMP/fake.in"
wait_for 10 "the fake provider did not start: $(cat "$TMP/fake.err" 2>/dev/null)" \
    grep -q '^FAKE_URL=' "$TMP/fake.out"
FAKE_URL=$(sed -n 's/^FAKE_URL=//p' "$TMP/fake.out")
fake_says() { # command, answer prefix: sends the command, prints its answer
    local before
    before=$(grep -c "^$2" "$TMP/fake.out" || true)
    echo "$1" >&7
    for _ in $(seq 1 6000); do
        if (($(grep -c "^$2" "$TMP/fake.out" || true) > before)); then
            grep "^$2" "$TMP/fake.out" | tail -1
            return 0
        fi
        sleep 0.1
    done
    die "the fake provider did not answer \`$1\`"
}

# --- dravo ----------------------------------------------------------------------------------
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^DRAVO_' || true)
DRAVO_PORT=$(free_port)
export DRAVO_DATABASE_PATH="$TMP/dravo.db"
export DRAVO_SERVER_BIND="127.0.0.1:$DRAVO_PORT"
# The rate limits at their highest (100 000 requests/s per tenant or client, as good as off):
# one tenant and one client address make all the load, and the run is about Dravo's work.
for limit in START CALLBACK CREATE TOKEN CHANGE; do
    export "DRAVO_LIMITS_${limit}_PER_SECOND=100000"
done
# All the load comes from 127.0.0.1: let it use every connection (CONNECTIONS may exceed the
# per-client default of 128).
export DRAVO_SERVER_MAX_CONNECTIONS_PER_IP=1024
export DRAVO_PROVIDERS_X_AUTHORIZE_URL="$FAKE_URL/authorize"
export DRAVO_PROVIDERS_X_TOKEN_URL="$FAKE_URL/token"
export DRAVO_PROVIDERS_X_API_BASE="$FAKE_URL"
export DRAVO_REFRESH_SKEW_SECONDS=3600
export DRAVO_REFRESH_INTERVAL_SECONDS=1
export RUST_LOG=$LOG_LEVEL
cd "$TMP"

log "starting dravo serve on 127.0.0.1:$DRAVO_PORT (fake X at $FAKE_URL)"
"$DRAVO" serve >"$TMP/dravo.log" 2>&1 &
DRAVO_PID=$!
PIDS+=("$DRAVO_PID")
DRAVO_URL="http://127.0.0.1:$DRAVO_PORT"
wait_for 10 "dravo serve did not answer: $(tail -5 "$TMP/dravo.log")" \
    curl -fsS "$DRAVO_URL/healthz"

export SOAK_CLIENT_SECRET=soak-secret
"$DRAVO" oauth-apps create --owner soak --provider x --name "Soak App" \
    --client-id soak-client --client-secret-env SOAK_CLIENT_SECRET >/dev/null
APP_ID=$("$DRAVO" oauth-apps list --owner soak --json | grep -o '"id":"oa_[a-z2-7]*"' | head -1 | cut -d'"' -f4)
TOKEN=$("$DRAVO" token issue --sub soak --ttl 86400)
AUTH="Authorization: Bearer $TOKEN"

log "connecting $SOAK_ACCOUNTS accounts through the fake X"
answer=$(fake_says "connect $DRAVO_URL $TOKEN $APP_ID $SOAK_ACCOUNTS" connected)
read -r _ CONNECTED CONNECT_FAILED <<<"$answer"
[[ $CONNECT_FAILED == 0 && $CONNECTED == "$SOAK_ACCOUNTS" ]] ||
    die "connects: $CONNECTED ok, $CONNECT_FAILED failed (see $TMP/fake.err)"
curl -fsS -H "$AUTH" "$DRAVO_URL/v1/accounts?limit=500" >"$TMP/accounts.json"
mapfile -t ACCOUNTS < <(grep -o '"id":"acc_[a-z2-7]*"' "$TMP/accounts.json" | cut -d'"' -f4)
((${#ACCOUNTS[@]} == SOAK_ACCOUNTS)) || die "expected $SOAK_ACCOUNTS accounts, listed ${#ACCOUNTS[@]}"

# Let the refresher take a few passes, so the load starts with it busy.
sleep 5
CALLS_BEFORE=$(fake_says stats token_requests | awk '{print $2}')
((CALLS_BEFORE > SOAK_ACCOUNTS)) || die "the refresher did not renew any account ($CALLS_BEFORE token calls)"

# --- mixed load -----------------------------------------------------------------------------
{
    # An even mix: apps, start, accounts, then an access token (of the first 10 accounts in
    # turn), and again.
    echo 'local fixed = {'
    echo '  "/v1/oauth-apps",'
    echo "  \"/v1/oauth/x/start?oauth_app_id=$APP_ID\","
    echo '  "/v1/accounts",'
    echo '}'
    echo 'local tokens = {'
    for id in "${ACCOUNTS[@]:0:10}"; do
        echo "  \"/v1/accounts/$id/access-token\","
    done
    echo '}'
    echo 'local i, j = 0, 0'
    echo 'request = function()'
    echo '  i = i + 1'
    echo '  if i % 4 == 0 then'
    echo '    j = j + 1'
    echo '    return wrk.format("GET", tokens[(j % #tokens) + 1])'
    echo '  end'
    echo '  return wrk.format("GET", fixed[i % 4])'
    echo 'end'
} >"$TMP/mixed.lua"

log "wrk -t$THREADS -c$CONNECTIONS -d$DURATION (mixed), sampling every ${SAMPLE_EVERY}s"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$TMP/mixed.lua" -H "$AUTH" \
    "$DRAVO_URL" >"$TMP/wrk.txt" &
WRK_PID=$!
PIDS+=("$WRK_PID")
START=$(date +%s)
: >"$TMP/samples.txt"
printf '%8s %10s %6s %18s\n' "t (s)" "RSS (MB)" "fds" "provider calls" >&2
while kill -0 "$WRK_PID" 2>/dev/null; do
    now=$(($(date +%s) - START))
    kill -0 "$DRAVO_PID" 2>/dev/null || die "dravo serve died (see $TMP/dravo.log)"
    rss=$(rss_kb "$DRAVO_PID")
    fds=$(fd_count "$DRAVO_PID")
    calls=$(fake_says stats token_requests | awk '{print $2}')
    echo "$now $rss $fds $calls" >>"$TMP/samples.txt"
    printf '%8s %10s %6s %18s\n' "$now" "$(mb "$rss")" "$fds" "$calls" >&2
    # Sleep to the next multiple of SAMPLE_EVERY, or until wrk ends.
    next=$(((now / SAMPLE_EVERY + 1) * SAMPLE_EVERY))
    while kill -0 "$WRK_PID" 2>/dev/null && (($(date +%s) - START < next)); do
        sleep 0.5
    done
done
wait "$WRK_PID" || die "wrk failed"
END_S=$(($(date +%s) - START))
sed 's/^/    /' "$TMP/wrk.txt" >&2

# --- after the load -------------------------------------------------------------------------
curl -fsS "$DRAVO_URL/healthz" >/dev/null || die "dravo stopped answering"
CALLS_AFTER=$(fake_says stats token_requests | awk '{print $2}')
curl -fsS -H "$AUTH" "$DRAVO_URL/v1/accounts?limit=500&status=needs_reauth" >"$TMP/dead.json"
DEAD=$({ grep -o '"id":"acc_' "$TMP/dead.json" || true; } | wc -l)
NON_2XX=$(awk '/Non-2xx or 3xx responses/ {print $NF}' "$TMP/wrk.txt")
NON_2XX=${NON_2XX:-0}
SOCKET_ERRORS=$(grep 'Socket errors' "$TMP/wrk.txt" | sed 's/^ *//' || true)
WARNINGS=$(grep -c 'WARN' "$TMP/dravo.log" || true)
DB_KB=$(du -k "$TMP"/dravo.db* | awk '{s += $1} END {print s}')

# --- summary --------------------------------------------------------------------------------
# First minute: samples at t <= 60; last minute: samples at t >= END - 60.
stats() { # column (2 RSS, 3 fds) -> "first-minute max, last-minute max"
    awk -v c="$1" -v end="$END_S" '
        $1 <= 60 && $c > first { first = $c }
        $1 >= end - 60 && $c > last { last = $c }
        END { print first, last }' "$TMP/samples.txt"
}
flat() { awk -v f="$1" -v l="$2" 'BEGIN {print (l <= f * 1.10) ? "flat" : "GREW"}'; }
read -r RSS_FIRST RSS_LAST < <(stats 2)
read -r FD_FIRST FD_LAST < <(stats 3)
RSS_VERDICT=$(flat "$RSS_FIRST" "$RSS_LAST")
FD_VERDICT=$(flat "$FD_FIRST" "$FD_LAST")
REFRESHES=$((CALLS_AFTER - CALLS_BEFORE))

echo
echo "Dravo soak: $DURATION of wrk -t$THREADS -c$CONNECTIONS mixed load on 127.0.0.1, $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "  load: $(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.txt") req/s over 4 endpoints ($(awk '/requests in/ {print $1}' "$TMP/wrk.txt") requests), non-2xx: $NON_2XX${SOCKET_ERRORS:+, $SOCKET_ERRORS}"
echo "  refresher: $REFRESHES renewals at the fake X during the load (~$((REFRESHES / (END_S > 0 ? END_S : 1)))/s, $SOAK_ACCOUNTS accounts due at every pass); accounts needing re-authorization at the end: $DEAD"
echo "  dravo log: $WARNINGS warning lines (log level $LOG_LEVEL); database with WAL: $((DB_KB / 1024)) MB"
echo
echo "samples (every ${SAMPLE_EVERY}s):"
printf '  %8s %10s %6s %18s\n' "t (s)" "RSS (MB)" "fds" "provider calls"
while read -r t rss fds calls; do
    printf '  %8s %10s %6s %18s\n' "$t" "$(mb "$rss")" "$fds" "$calls"
done <"$TMP/samples.txt"
echo
echo "flat = the last minute's largest sample within 10% of the first minute's largest"
printf '  %-26s first minute max %8s, last minute max %8s: %s\n' "RSS (MB)" "$(mb "$RSS_FIRST")" "$(mb "$RSS_LAST")" "$RSS_VERDICT"
printf '  %-26s first minute max %8s, last minute max %8s: %s\n' "open file descriptors" "$FD_FIRST" "$FD_LAST" "$FD_VERDICT"

if [[ $STRICT == 1 ]] &&
    [[ $RSS_VERDICT != flat || $FD_VERDICT != flat || $NON_2XX != 0 || $DEAD != 0 ]]; then
    exit 1
fi
exit 0
