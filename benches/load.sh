#!/usr/bin/env bash
# Reproducible load run for Dravo, on loopback only. See benches/README.md.
#
# Measures, in one run against a build of $PROFILE (default dist: what is deployed), with wrk -t2 -c64 --latency:
#   - a bare poem handler returning fixed JSON (examples/bare_json.rs): the baseline
#   - authenticated GET /v1/oauth-apps for a tenant with 5 apps
#   - authenticated GET /v1/oauth/x/start with a BYOK app
#   - authenticated GET /v1/accounts for a tenant with 20 accounts
#   - authenticated GET /v1/accounts/{id}/access-token for a token that is fresh (no provider
#     call: the store read, the refresh decision and opening the seal)
# For each: requests/s, p50, p99, the ratio to the bare server's requests/s, p99 against twice
# the bare server's p99, and the server's CPU time per request (user + system, from
# /proc/<pid>/stat before and after its wrk run) against the bare server's: the steadier
# measure on a shared machine, since wrk's own CPU and other processes do not count in it. Also dravo's RSS when idle (before load) and the largest RSS sampled
# during the load, and the hyperfine mean time of `dravo oauth-apps list --owner bench`.
#
# Environment: DURATION (wrk duration, default 10s), THREADS (2), CONNECTIONS (64),
# HYPERFINE_RUNS (optional --runs for hyperfine), STRICT=1 (exit 1 when a target is missed),
# KEEP_TMP=1 (keep the temp dir with the database and raw outputs), LOG_LEVEL (RUST_LOG),
# DATABASE_URL=postgres://… (run against that PostgreSQL database, which must hold no Dravo
# data yet, instead of a SQLite file in the temp dir; the key file stays in the temp dir).
set -euo pipefail
# The build profile measured: `dist` (what is deployed: fat LTO) unless PROFILE says otherwise.
PROFILE=${PROFILE:-dist}
BENCH_DATABASE_URL=${DATABASE_URL:-}

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
for tool in wrk hyperfine curl; do
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
log "cargo build --profile $PROFILE --bin dravo --example bare_json --example seed_accounts"
cargo build --profile "$PROFILE" --bin dravo --example bare_json --example seed_accounts
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
TARGET_DIR=${TARGET_DIR:-$ROOT/target}
DRAVO="$TARGET_DIR/$PROFILE/dravo"
BARE="$TARGET_DIR/$PROFILE/examples/bare_json"
SEED="$TARGET_DIR/$PROFILE/examples/seed_accounts"
[[ -x $DRAVO && -x $BARE && -x $SEED ]] || die "$PROFILE binaries not found under $TARGET_DIR/$PROFILE"

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
# A process's CPU time so far (user + system), in clock ticks. The command name, field 2, is
# in parentheses and may hold spaces: count the fields after its closing parenthesis.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
CLK_TCK=$(getconf CLK_TCK)
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f", kb / 1024}'; }

# Only the variables below configure dravo: no config file, no inherited DRAVO_*.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^DRAVO_' || true)
DRAVO_PORT=$(free_port)
BARE_PORT=$(free_port)
[[ $BARE_PORT != "$DRAVO_PORT" ]] || BARE_PORT=$(free_port)
export DRAVO_DATABASE_PATH="$TMP/dravo.db"
if [[ -n $BENCH_DATABASE_URL ]]; then
    export DRAVO_DATABASE_URL=$BENCH_DATABASE_URL
    log "database: PostgreSQL (DATABASE_URL)"
fi
export DRAVO_SERVER_BIND="127.0.0.1:$DRAVO_PORT"
# The rate limits at their highest (100 000 requests/s per tenant or client, as good as off):
# one tenant and one client address make all the load, and the run is about Dravo's work.
for limit in START CALLBACK CREATE TOKEN CHANGE; do
    export "DRAVO_LIMITS_${limit}_PER_SECOND=100000"
done
# All the load comes from 127.0.0.1: let it use every connection (CONNECTIONS may exceed the
# per-client default of 128).
export DRAVO_SERVER_MAX_CONNECTIONS_PER_IP=1024
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
# Written through the library by examples/seed_accounts.rs, while the server runs (another
# process, as the CLI would be): rows as a connect leaves them, tokens sealed with this
# database's key and bound to their rows, expiring in 30 days (so no refresh is due and no
# provider is called). The first one's access token is what the access-token run reads.
"$SEED" --database "$DRAVO_DATABASE_PATH" --owner bench --app-id "$APP_ID" --count 20 \
    >"$TMP/accounts.txt" || die "seeding the accounts failed"
ACCOUNT_ID=$(head -1 "$TMP/accounts.txt")
[[ $ACCOUNT_ID == acc_* ]] || die "seed_accounts printed no account id"
ACCESS_URL="$DRAVO_URL/v1/accounts/$ACCOUNT_ID/access-token"
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
curl -fsS -H "$AUTH" "$ACCESS_URL" >"$TMP/access.json" ||
    die "authenticated GET /v1/accounts/{id}/access-token failed"
grep -q '"access_token"' "$TMP/access.json" || die "no access_token in $(cat "$TMP/access.json")"
ACCESS_BYTES=$(wc -c <"$TMP/access.json")
DRAVO_BYTES=$(wc -c <"$TMP/apps.json")
BARE_BYTES=$(curl -fsS "$BARE_URL" | wc -c)

sleep 1
IDLE_RSS_KB=$(rss_kb "$DRAVO_PID")

# --- load -----------------------------------------------------------------------------------
# dravo's VmRSS is sampled every 0.1 s while wrk runs (against dravo or the bare server alike);
# the largest sample is "RSS under load".
# The serving process's CPU ticks before and after are kept in $TMP/cpu-<name>.txt.
run_wrk() { # name, pid of the server under load, url, [header]
    local name=$1 pid=$2 url=$3 out="$TMP/wrk-$1.txt" sampler before
    shift 3
    log "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $name"
    (while rss_kb "$DRAVO_PID" >>"$TMP/rss-load.txt" 2>/dev/null; do sleep 0.1; done) &
    sampler=$!
    before=$(cpu_ticks "$pid")
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" >"$out"
    echo "$before $(cpu_ticks "$pid")" >"$TMP/cpu-$name.txt"
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    sed 's/^/    /' "$out" >&2
    if grep -q 'Non-2xx or 3xx responses' "$out"; then
        die "$name: wrk saw non-2xx responses; the numbers would be meaningless"
    fi
    if grep -q 'Socket errors' "$out"; then
        log "$name: $(grep 'Socket errors' "$out" | sed 's/^ *//')"
    fi
}
rps() { awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk-$1.txt"; }
# The server's CPU time per request of a run, in microseconds.
cpu_us() {
    local requests
    requests=$(awk '/ requests in / {print $1}' "$TMP/wrk-$1.txt")
    awk -v n="$requests" -v hz="$CLK_TCK" '{printf "%.1f", ($2 - $1) / hz * 1e6 / n}' \
        "$TMP/cpu-$1.txt"
}
# A latency percentile of a run in milliseconds (wrk prints us, ms or s).
pct_ms() { # name, percentile (50%, 99%)
    awk -v p="$2" '$1 == p {
        v = $2
        if (v ~ /us$/) { sub(/us$/, "", v); v = v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v) }
        else if (v ~ /s$/) { sub(/s$/, "", v); v = v * 1000 }
        printf "%.3f", v
    }' "$TMP/wrk-$1.txt"
}

: >"$TMP/rss-load.txt"
run_wrk bare "$BARE_PID" "$BARE_URL"
run_wrk apps "$DRAVO_PID" "$DRAVO_URL/v1/oauth-apps" -H "$AUTH"
run_wrk start "$DRAVO_PID" "$START_URL" -H "$AUTH"
run_wrk accounts "$DRAVO_PID" "$DRAVO_URL/v1/accounts" -H "$AUTH"
run_wrk access "$DRAVO_PID" "$ACCESS_URL" -H "$AUTH"
for name in bare apps start accounts access; do
    [[ -n $(rps "$name") && -n $(pct_ms "$name" 99%) && -n $(cpu_us "$name") ]] ||
        die "could not read Requests/sec and latency from wrk ($name)"
done
LOADED_RSS_KB=$(sort -n "$TMP/rss-load.txt" | tail -1)
[[ -n $LOADED_RSS_KB ]] || die "no RSS sample was taken during the load"
sleep 1
AFTER_RSS_KB=$(rss_kb "$DRAVO_PID")

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
verdict() { if [[ $1 == 1 ]]; then echo met; else echo MISSED; fi; }
BARE_RPS=$(rps bare)
BARE_P99=$(pct_ms bare 99%)
BARE_CPU=$(cpu_us bare)
MISSED=0
IDLE_OK=$(awk -v kb="$IDLE_RSS_KB" 'BEGIN {print (kb <= 20 * 1024) ? 1 : 0}')
LOADED_OK=$(awk -v kb="$LOADED_RSS_KB" 'BEGIN {print (kb <= 60 * 1024) ? 1 : 0}')
CLI_OK=$(awk -v ms="$CLI_MEAN_MS" 'BEGIN {print (ms < 20) ? 1 : 0}')
[[ $IDLE_OK == 1 && $LOADED_OK == 1 && $CLI_OK == 1 ]] || MISSED=1

echo
echo "Dravo load run: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency on 127.0.0.1, $(nproc) cores ($(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)), $PROFILE build, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "  log level: ${RUST_LOG:-default (info: one line per request)}"
echo "  bodies: bare $BARE_BYTES B; apps $DRAVO_BYTES B (5 apps); accounts $ACCOUNTS_BYTES B (20 accounts); access token $ACCESS_BYTES B"
echo "  targets: ratio = dravo req/s / bare req/s >= 0.5; p99 <= 2 x bare p99 ($BARE_P99 ms);"
echo "  server CPU per request <= 2.5 x bare's for the lists, <= 3 x for start and access-token"
echo
printf '%-38s %10s %9s %9s %7s %9s %7s  %-10s %-11s %-8s\n' "endpoint" "req/s" "p50 ms" "p99 ms" \
    "ratio" "cpu us/r" "x bare" "ratio>=0.5" "p99<=2xbare" "cpu"
printf '%-38s %10s %9s %9s %7s %9s %7s  %-10s %-11s %-8s\n' "bare poem GET /" "$BARE_RPS" \
    "$(pct_ms bare 50%)" "$BARE_P99" "-" "$BARE_CPU" "-" "-" "-" "-"
row() { # label, name, CPU target (a multiple of bare's CPU per request)
    local rps p50 p99 ratio ratio_ok p99_ok cpu times cpu_ok
    rps=$(rps "$2")
    p50=$(pct_ms "$2" 50%)
    p99=$(pct_ms "$2" 99%)
    cpu=$(cpu_us "$2")
    ratio=$(awk -v d="$rps" -v b="$BARE_RPS" 'BEGIN {printf "%.3f", d / b}')
    times=$(awk -v d="$cpu" -v b="$BARE_CPU" 'BEGIN {printf "%.2f", d / b}')
    ratio_ok=$(awk -v r="$ratio" 'BEGIN {print (r >= 0.5) ? 1 : 0}')
    p99_ok=$(awk -v p="$p99" -v b="$BARE_P99" 'BEGIN {print (p <= 2 * b) ? 1 : 0}')
    cpu_ok=$(awk -v t="$times" -v max="$3" 'BEGIN {print (t <= max) ? 1 : 0}')
    [[ $ratio_ok == 1 && $p99_ok == 1 && $cpu_ok == 1 ]] || MISSED=1
    printf '%-38s %10s %9s %9s %7s %9s %7s  %-10s %-11s %-8s\n' "$1" "$rps" "$p50" "$p99" \
        "$ratio" "$cpu" "$times" "$(verdict "$ratio_ok")" "$(verdict "$p99_ok")" "$(verdict "$cpu_ok")"
}
row "GET /v1/oauth-apps (5 apps)" apps 2.5
row "GET /v1/oauth/x/start" start 3
row "GET /v1/accounts (20 accounts)" accounts 2.5
row "GET /v1/accounts/{id}/access-token" access 3
echo
printf '%-38s %-22s %-10s %s\n' "metric" "value" "target" "result"
printf '%-38s %-22s %-10s %s\n' "dravo idle RSS" "$(mb "$IDLE_RSS_KB") MB" "<= 20 MB" "$(verdict "$IDLE_OK")"
printf '%-38s %-22s %-10s %s\n' "dravo RSS under load (max sampled)" "$(mb "$LOADED_RSS_KB") MB" "<= 60 MB" "$(verdict "$LOADED_OK")"
printf '%-38s %-22s %-10s %s\n' "dravo RSS 1 s after the load" "$(mb "$AFTER_RSS_KB") MB" "-" "-"
printf '%-38s %-22s %-10s %s\n' "dravo oauth-apps list (mean)" "$CLI_MEAN_MS ms ± $CLI_SD_MS" "< 20 ms" "$(verdict "$CLI_OK")"

if [[ $STRICT == 1 && $MISSED == 1 ]]; then
    exit 1
fi
exit 0
