#!/usr/bin/env bash
# `npm run demo`: builds a local lab (network-namespace hosts with their own sshd), deploys a mirror
# cluster and a farm with the demo app through the on-prem deployer, then walks through a crash of
# the primary, its restart and a swap back, and a crash and return of a farm node, printing a
# timeline with measured times. The lab is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "mirrorfarm demo: needs root (it creates network namespaces, a bridge, mounts and one sshd per host); run: sudo npm run demo" >&2
  exit 1
fi

LAB=demo
T0=$(date +%s%3N)
step() { printf '[%6.1fs] %s\n' "$(( $(date +%s%3N) - T0 ))e-3" "$*"; }
mf() { node bin/mirrorfarm.js "$@"; }

step "checking prerequisites (Debian packages, node_modules, build)"
bash scripts/install-system.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build

# A lab left by an interrupted demo is removed first; this one is removed however we exit.
mf lab down --name "$LAB"
trap 'step "tearing the lab down"; mf lab down --name "$LAB"; step "done"' EXIT

step "lab up: hosts host1..host5, witness, client; agents deployed over SSH; waiting until healthy"
INFO=$(mf lab up --name "$LAB" --mirror --farm 3 --app demo --json 2>/dev/null | tail -n 1)
field() { node -e 'console.log(process.argv[2].split(".").reduce((o, k) => o[k], JSON.parse(process.argv[1])))' "$INFO" "$1"; }
URL=$(field mirror.app.url)
VIP=$(field mirror.vip)
FARM_URL=$(field farm.app.url)
# 30 of the client host's source addresses, as 30 different clients of the farm.
SOURCES=$(node -e 'console.log(JSON.parse(process.argv[1]).client.addresses.slice(1, 31).join(" "))' "$INFO")
step "lab up done: mirror cluster on host1+host2 with the witness (VIP $VIP), farm on host3..host5 ($FARM_URL)"

# Polls the app URL every 20 ms until it answers WANT; prints the milliseconds since SINCE (epoch ms).
wait_app() {
  node -e '
    const [url, want, deadline, t0] = [process.argv[1], process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
    const probe = () => {
      const req = require("http").get(url, { timeout: 200 }, (res) => {
        let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => next(b.trim()));
      });
      req.on("timeout", () => req.destroy()); req.on("error", () => next(""));
    };
    const next = (got) => {
      if (got === want) { console.log(Date.now() - t0); process.exit(0); }
      if (Date.now() - t0 > deadline) { console.error(`no answer "${want}" from ${url} within ${deadline} ms (last: "${got}")`); process.exit(1); }
      setTimeout(probe, 20);
    };
    probe();' "$URL" "$1" 30000 "$2"
}

# Waits until `lab status` shows HOST in STATE; prints the milliseconds it took.
wait_state() {
  local host=$1 want=$2 start now
  start=$(date +%s%3N)
  for _ in $(seq 1 300); do
    if mf lab status --name "$LAB" --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.exit(JSON.parse(s).states[process.argv[1]]===process.argv[2]?0:1))' "$host" "$want"; then
      now=$(date +%s%3N); echo $((now - start)); return 0
    fi
    sleep 0.2
  done
  echo "host $host did not reach $want within 60 s" >&2; return 1
}

wait_state host2 SECOND >/dev/null
step "cluster settled: host1 PRIM, host2 SECOND (in sync)"
step "the app answers: $(curl -s -m 2 "$URL")"
mf lab status --name "$LAB"

step "CRASH: lab kill host1 (SIGKILL to every process of host1, link down)"
KILLED_AT=$(date +%s%3N)
mf lab kill --name "$LAB" host1 2>/dev/null
FAILOVER=$(wait_app host2 "$KILLED_AT")
step "failover: the VIP answers from host2 after $FAILOVER ms"

step "lab restart host1 (boot: mount namespace, sshd, agent under its supervisor)"
mf lab restart --name "$LAB" host1
step "host1 rejoined as SECOND after $(wait_state host1 SECOND) ms"
mf lab status --name "$LAB"

step "SWAP back: mirrorfarm swap --lab $LAB --host host2"
SWAPPED_AT=$(date +%s%3N)
mf swap --lab "$LAB" --host host2 >/dev/null
SWAP=$(wait_app host1 "$SWAPPED_AT")
step "swap: the VIP answers from host1 after $SWAP ms"
mf lab status --name "$LAB"

# Which farm node serves each of the 30 clients, as "hostN xCOUNT" lines.
farm_spread() {
  mf lab exec --name "$LAB" client -- sh -c "for s in $SOURCES; do curl -s -m 1 --interface \$s $FARM_URL || echo none; done" | sort | uniq -c | awk '{printf "%s x%s  ", $2, $1} END {print ""}'
}
# Waits until no client is served by HOST (or, with "back", until host3..host5 all serve clients
# again); the probing loop runs inside the client host. Prints the milliseconds since SINCE (epoch ms).
wait_farm() {
  local cond=$1 since=$2 now test
  if [ "$cond" = back ]; then test='echo "$out" | grep -q host3 && echo "$out" | grep -q host4 && echo "$out" | grep -q host5 && ! echo "$out" | grep -q none'
  else test="! echo \"\$out\" | grep -q -e $cond -e none"; fi
  mf lab exec --name "$LAB" client -- sh -c "i=0; while [ \$i -lt 300 ]; do
      out=\$(for s in $SOURCES; do curl -s -m 1 --interface \$s $FARM_URL || echo none; done)
      if $test; then exit 0; fi
      i=\$((i + 1))
    done; exit 1" || { echo "farm did not reach '$cond' in time" >&2; return 1; }
  now=$(date +%s%3N); echo $((now - since))
}

step "FARM: 30 clients (source addresses) spread over host3..host5: $(farm_spread)"
FARM_KILLED_AT=$(date +%s%3N)
mf lab kill --name "$LAB" host4 2>/dev/null
step "CRASH: lab kill host4"
FARM_FAILOVER=$(wait_farm host4 "$FARM_KILLED_AT")
step "farm failover: every client served by host3/host5 after $FARM_FAILOVER ms: $(farm_spread)"
FARM_BACK_AT=$(date +%s%3N)
mf lab restart --name "$LAB" host4 2>/dev/null
FARM_BACK=$(wait_farm back "$FARM_BACK_AT")
step "host4 restarted and took back its share after $FARM_BACK ms: $(farm_spread)"

echo
echo "(times run from the moment the lab command was started, so they include its ~0.5 s start-up)"
echo "summary: mirror failover (kill -> VIP answers from the new host) ${FAILOVER} ms; swap ${SWAP} ms;"
echo "         farm failover (kill -> every client served) ${FARM_FAILOVER} ms; farm rejoin ${FARM_BACK} ms"
