#!/usr/bin/env bash
# Reproducible load run for Dravo, on loopback only. See benches/README.md.
#
# Measures, in one run against a release build:
#   - wrk -t2 -c64 throughput of a bare poem handler returning fixed JSON (examples/bare_json.rs)
#   - wrk -t2 -c64 throughput of authenticated GET /v1/oauth-apps for a tenant with 5 apps
#   - wrk -t2 -c64 throughput of authenticated GET /v1/oauth/x/start with a BYOK app
#   - wrk -t2 -c64 throughput of authenticated GET /v1/accounts for a tenant with 20 accounts
#   - dravo's RSS when idle (before load) and after load
#   - hyperfine mean time of `dravo oauth-apps list --owner bench`
#
# Environment: DURATION (wrk duration, default 10s), THREADS (2), CONNECTIONS (64),
# HYPERFINE_RUNS (optional --runs for hyperfine), STRICT=1 (exit 1 when a target is missed),
# KEEP_TMP=1 (keep the temp dir with the database and raw outputs).
set -euo pipefail

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
HYPERFINE_RUNS=${HYPERFINE_RUNS:-}
STRICT=${STRICT:-0}
KEEP_TMP=${KEEP_TMP:-0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'load.sh: %s\n' "$*" >&2; exit 1; }

# --- tools ----------------------------------------------------------------------------------
missing=()
for tool in wrk hyperfine curl sqlite3; do
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
log "cargo build --release --bin dravo --example bare_json"
cargo build --release --bin dravo --example bare_json
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
TARGET_DIR=${TARGET_DIR:-$ROOT/target}
DRAVO="$TARGET_DIR/release/dravo"
BARE="$TARGET_DIR/release/examples/bare_json"
[[ -x $DRAVO && -x $BARE ]] || die "release binaries not found under $TARGET_DIR/release"

# --- processes and cleanup ------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/dravo-bench.XXXXXX")
PIDS=()
cleanup() {
    local pid
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

# A port on 127.0.0.1 that nothing answers on (connection refused means free).
free_port() {
    local port
    for _ in $(seq 1 100); do
        # Below Linux's ephemeral range (32768+), so no TIME_WAIT socket of an earlier
        # wrk run holds it.
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "no free port found"
}

wait_http() { # url, what, log file
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    [[ -f ${3:-} ]] && tail -5 "$3" >&2
    die "$2 did not answer at $1 within 10 s"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f", kb / 1024}'; }

# Only the variables below configure dravo: no config file, no inherited DRAVO_*.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^DRAVO_' || true)
DRAVO_PORT=$(free_port)
BARE_PORT=$(free_port)
[[ $BARE_PORT != "$DRAVO_PORT" ]] || BARE_PORT=$(free_port)
export DRAVO_DATABASE_PATH="$TMP/dravo.db"
export DRAVO_SERVER_BIND="127.0.0.1:$DRAVO_PORT"
# The default log level, as users run it: one info line per request. LOG_LEVEL=warn measures
# without the request log.
if [[ -n ${LOG_LEVEL:-} ]]; then export RUST_LOG=$LOG_LEVEL; else unset RUST_LOG; fi
cd "$TMP" # so no ./dravo.toml is picked up

log "starting dravo serve on 127.0.0.1:$DRAVO_PORT and bare_json on 127.0.0.1:$BARE_PORT"
"$DRAVO" serve >"$TMP/dravo.log" 2>&1 &
DRAVO_PID=$!
PIDS+=("$DRAVO_PID")
"$BARE" "127.0.0.1:$BARE_PORT" >"$TMP/bare.log" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")
DRAVO_URL="http://127.0.0.1:$DRAVO_PORT"
BARE_URL="http://127.0.0.1:$BARE_PORT/"
wait_http "$DRAVO_URL/healthz" "dravo serve" "$TMP/dravo.log"
wait_http "$BARE_URL" "bare_json" "$TMP/bare.log"

# --- data: 5 apps for tenant `bench`, created with the CLI while the server runs ------------
export BENCH_CLIENT_SECRET="bench-secret-value"
for i in 1 2 3 4 5; do
    "$DRAVO" oauth-apps create --owner bench --provider x --name "Bench App $i" \
        --client-id "bench-client-id-$i" --client-secret-env BENCH_CLIENT_SECRET >/dev/null
done
TOKEN=$("$DRAVO" token issue --sub bench --ttl 3600)
AUTH="Authorization: Bearer $TOKEN"

APP_ID=$("$DRAVO" oauth-apps list --owner bench --json | grep -o '"id":"oa_[a-z2-7]*"' | head -1 | cut -d'"' -f4)

# --- data: 20 connected accounts for tenant `bench` ------------------------------------------
# Written with sqlite3 as a connect would leave them (sealed-token-sized blobs: listing never
# opens them), while the server runs, as another process.
sqlite3 "$DRAVO_DATABASE_PATH" <<SQL >/dev/null
PRAGMA busy_timeout = 10000;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
INSERT INTO accounts (id, owner, provider, oauth_app_id, provider_account_id, username,
                      display_name, scopes, status, access_token_sealed, refresh_token_sealed,
                      expires_at, refresh_expires_at, created_at, updated_at)
SELECT 'acc_benchaaaaaaaaaaaaaa' || substr('abcdefghijklmnopqrstuvwxyz', i, 1), 'bench', 'x', '$APP_ID', printf('14%08d', i),
       printf('bench_user_%d', i), printf('Bench User %d', i),
       '["tweet.read","tweet.write","users.read","offline.access","media.write"]', 'active',
       randomblob(140), randomblob(120), unixepoch() + 7200, NULL,
       unixepoch() - 86400 + i, unixepoch() - 3600 + i
FROM n;
SQL
START_URL="$DRAVO_URL/v1/oauth/x/start?oauth_app_id=$APP_ID"

# Sanity: the measured requests are 200s with real content, not cheap errors.
curl -fsS -H "$AUTH" "$START_URL" | grep -q '"authorize_url"' ||
    die "authenticated GET /v1/oauth/x/start failed"
curl -fsS -H "$AUTH" "$DRAVO_URL/v1/oauth-apps" >"$TMP/apps.json" ||
    die "authenticated GET /v1/oauth-apps failed"
APP_COUNT=$(grep -o '"id":"oa_' "$TMP/apps.json" | wc -l)
[[ $APP_COUNT -eq 5 ]] || die "expected 5 apps, got $APP_COUNT: $(cat "$TMP/apps.json")"
curl -fsS -H "$AUTH" "$DRAVO_URL/v1/accounts" >"$TMP/accounts.json" ||
    die "authenticated GET /v1/accounts failed"
ACCOUNT_COUNT=$(grep -o '"id":"acc_' "$TMP/accounts.json" | wc -l)
[[ $ACCOUNT_COUNT -eq 20 ]] || die "expected 20 accounts, got $ACCOUNT_COUNT"
ACCOUNTS_BYTES=$(wc -c <"$TMP/accounts.json")
DRAVO_BYTES=$(wc -c <"$TMP/apps.json")
BARE_BYTES=$(curl -fsS "$BARE_URL" | wc -c)

sleep 1
IDLE_RSS_KB=$(rss_kb "$DRAVO_PID")

# --- load -----------------------------------------------------------------------------------
run_wrk() { # name, url, [header]
    local name=$1 url=$2 out="$TMP/wrk-$1.txt"
    shift 2
    log "wrk -t$THREADS -c$CONNECTIONS -d$DURATION $name"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" >"$out"
    sed 's/^/    /' "$out" >&2
    if grep -q 'Non-2xx or 3xx responses' "$out"; then
        die "$name: wrk saw non-2xx responses; the numbers would be meaningless"
    fi
    if grep -q 'Socket errors' "$out"; then
        log "$name: $(grep 'Socket errors' "$out" | sed 's/^ *//')"
    fi
}
rps() { awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk-$1.txt"; }
p99() { awk '$1 == "99%" {print $2}' "$TMP/wrk-$1.txt"; }

run_wrk bare "$BARE_URL"
run_wrk dravo "$DRAVO_URL/v1/oauth-apps" -H "$AUTH"
run_wrk start "$START_URL" -H "$AUTH"
run_wrk accounts "$DRAVO_URL/v1/accounts" -H "$AUTH"
BARE_RPS=$(rps bare)
DRAVO_RPS=$(rps dravo)
START_RPS=$(rps start)
ACCOUNTS_RPS=$(rps accounts)
[[ -n $BARE_RPS && -n $DRAVO_RPS && -n $START_RPS && -n $ACCOUNTS_RPS ]] ||
    die "could not read Requests/sec from wrk"
RATIO=$(awk -v d="$DRAVO_RPS" -v b="$BARE_RPS" 'BEGIN {printf "%.3f", d / b}')
START_RATIO=$(awk -v d="$START_RPS" -v b="$BARE_RPS" 'BEGIN {printf "%.3f", d / b}')
ACCOUNTS_RATIO=$(awk -v d="$ACCOUNTS_RPS" -v b="$BARE_RPS" 'BEGIN {printf "%.3f", d / b}')

sleep 1
LOADED_RSS_KB=$(rss_kb "$DRAVO_PID")

# --- CLI ------------------------------------------------------------------------------------
HF_ARGS=(--warmup 3 -N --style basic --export-json "$TMP/hyperfine.json")
[[ -n $HYPERFINE_RUNS ]] && HF_ARGS+=(--runs "$HYPERFINE_RUNS")
log "hyperfine ${HF_ARGS[*]} '$DRAVO oauth-apps list --owner bench'"
hyperfine "${HF_ARGS[@]}" "$DRAVO oauth-apps list --owner bench" >&2
CLI_MEAN_MS=$(grep -o '"mean": *[0-9.eE+-]*' "$TMP/hyperfine.json" | head -1 |
    awk -F: '{printf "%.2f", $2 * 1000}')
CLI_SD_MS=$(grep -o '"stddev": *[0-9.eE+-]*' "$TMP/hyperfine.json" | head -1 |
    awk -F: '{printf "%.2f", $2 * 1000}')

# --- summary --------------------------------------------------------------------------------
verdict() { awk -v ok="$1" 'BEGIN {print (ok ? "met" : "MISSED")}'; }
RATIO_OK=$(awk -v r="$RATIO" 'BEGIN {print (r >= 0.5)}')
START_OK=$(awk -v r="$START_RATIO" 'BEGIN {print (r >= 0.5)}')
ACCOUNTS_OK=$(awk -v r="$ACCOUNTS_RATIO" 'BEGIN {print (r >= 0.5)}')
IDLE_OK=$(awk -v kb="$IDLE_RSS_KB" 'BEGIN {print (kb < 20 * 1024)}')
CLI_OK=$(awk -v ms="$CLI_MEAN_MS" 'BEGIN {print (ms < 20)}')

echo
echo "Dravo load run: wrk -t$THREADS -c$CONNECTIONS -d$DURATION on 127.0.0.1, $(nproc) cores, release build"
echo "  log level: ${RUST_LOG:-default (info: one line per request)}"
echo "  bare body $BARE_BYTES bytes; apps body $DRAVO_BYTES bytes (5 apps); accounts body $ACCOUNTS_BYTES bytes (20 accounts)"
echo
printf '%-34s %-22s %-14s %s\n' "metric" "value" "target" "result"
printf '%-34s %-22s %-14s %s\n' "bare poem GET / (req/s)" "$BARE_RPS (p99 $(p99 bare))" "-" "-"
printf '%-34s %-22s %-14s %s\n' "dravo GET /v1/oauth-apps (req/s)" "$DRAVO_RPS (p99 $(p99 dravo))" "-" "-"
printf '%-34s %-22s %-14s %s\n' "ratio dravo / bare" "$RATIO" ">= 0.5" "$(verdict "$RATIO_OK")"
printf '%-34s %-22s %-14s %s\n' "dravo GET /v1/oauth/x/start (req/s)" "$START_RPS (p99 $(p99 start))" "-" "-"
printf '%-34s %-22s %-14s %s\n' "ratio start / bare" "$START_RATIO" ">= 0.5" "$(verdict "$START_OK")"
printf '%-34s %-22s %-14s %s\n' "dravo GET /v1/accounts (req/s)" "$ACCOUNTS_RPS (p99 $(p99 accounts))" "-" "-"
printf '%-34s %-22s %-14s %s\n' "ratio accounts / bare" "$ACCOUNTS_RATIO" ">= 0.5" "$(verdict "$ACCOUNTS_OK")"
printf '%-34s %-22s %-14s %s\n' "dravo idle RSS" "$(mb "$IDLE_RSS_KB") MB" "< 20 MB" "$(verdict "$IDLE_OK")"
printf '%-34s %-22s %-14s %s\n' "dravo RSS after load" "$(mb "$LOADED_RSS_KB") MB" "-" "-"
printf '%-34s %-22s %-14s %s\n' "dravo oauth-apps list (mean)" "$CLI_MEAN_MS ms ± $CLI_SD_MS" "< 20 ms" "$(verdict "$CLI_OK")"

if [[ $STRICT == 1 && ($RATIO_OK != 1 || $START_OK != 1 || $ACCOUNTS_OK != 1 || $IDLE_OK != 1 || $CLI_OK != 1) ]]; then
    exit 1
fi
exit 0
