#!/usr/bin/env bash
# Pager-mode MESSAGE load: SIPp (deploy/sipp/uac_message.xml) against
# mimigw itself (`mimigw serve` with its embedded JetStream file store,
# answering 202 once the gateway has turned the CPIM message into MIMI
# content and JetStream stored it), against the SIP edge alone
# (deploy/bench/edgebench: answers without storing, target "edge"), and
# against Kamailio answering a stateless 202 (deploy/bench/kamailio.cfg, two
# workers), in the same run, over UDP and over one TCP connection, at
# increasing rates.
#
# For each target and transport it reports the highest rate with no failed
# and no retransmitted message (and SIPp reaching the rate), the p99 answer
# time at each rate (as SIPp measures it, in steps of its 4 ms clock, and
# for mimigw also as the edge's own histogram bounds it), and peak memory (RSS of the process, or summed over
# Kamailio's processes, with PSS next to it since they share memory).
#
# Traffic goes to 127.0.0.1 only. Every loop is bounded: a fixed list of
# rates, DURATION seconds each, every SIPp run under `timeout`.
#
#   deploy/bench/load.sh                      # defaults below
#   RATES="5000 10000" DURATION=5 TRANSPORTS=udp TARGETS=mimigw deploy/bench/load.sh
#   RATES=5000 DURATION=600 TRANSPORTS=udp TARGETS=mimigw deploy/bench/load.sh  # memory soak
#   EXTERNAL_NATS=1 ...   # NATS as its own process, as in production: the
#                         # gateway's RSS and the server's are reported apart
#   NATS_CONFIG=FILE      # with EXTERNAL_NATS: a nats-server configuration file
#
# Needs: go, sipp (apt-get install -y sip-tester), kamailio (apt-get install
# -y kamailio).
set -euo pipefail
cd "$(dirname "$0")/../.."

RATES=${RATES:-"2000 5000 10000 15000 20000 25000 30000"}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3} # seconds at 1000/s before each sweep, not measured
TRANSPORTS=${TRANSPORTS:-"udp tcp"}
TARGETS=${TARGETS:-"mimigw edge kamailio"}
# A failed step is run again up to RETRIES times before the sweep stops:
# on a shared machine a stall of another process can cost one run a few
# retransmissions.
RETRIES=${RETRIES:-1}
MIMIGW_PORT=${MIMIGW_PORT:-5080}
EDGE_PORT=${EDGE_PORT:-5085}
MIMIGW_METRICS=${MIMIGW_METRICS:-127.0.0.1:9180}
KAMAILIO_PORT=5090 # fixed in kamailio.cfg
EXTERNAL_NATS=${EXTERNAL_NATS:-}
NATS_PORT=${NATS_PORT:-4333}
GO=${GO:-go}

for tool in sipp kamailio curl "$GO"; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool not found" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/mimigw-bench.XXXXXX)
echo "== work directory $WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# --- targets -------------------------------------------------------------

echo "== building mimigw and edgebench"
"$GO" build -o "$WORK/mimigw" ${GOFLAGS_BENCH:-} ./cmd/mimigw
"$GO" build -o "$WORK/edgebench" ${GOFLAGS_BENCH:-} ./deploy/bench/edgebench
# The NATS server of the pinned module, for EXTERNAL_NATS.
[ -n "$EXTERNAL_NATS" ] && "$GO" build -o "$WORK/nats-server" github.com/nats-io/nats-server/v2

# The gateway as shipped: SIP on loopback, the bus embedded with its data
# in the work directory, nothing behind it to deliver to phones (the
# outbound proxy is a closed port: inbound is what is measured).
start_mimigw() {
  local dir="$WORK/mimigw-$RANDOM"
  mkdir -p "$dir"
  local busyaml='bus: {embedded: {listen: "127.0.0.1:-1"}}'
  if [ -n "$EXTERNAL_NATS" ]; then
    "$WORK/nats-server" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$dir/nats" ${NATS_CONFIG:+-c "$NATS_CONFIG"} >"$WORK/nats.out" 2>&1 &
    NATS_PID=$!
    PIDS+=("$NATS_PID")
    sleep 1
    busyaml="bus: {url: \"nats://127.0.0.1:$NATS_PORT\"}"
  fi
  cat >"$dir/mimigw.yaml" <<YAML
domain: bench.mimigw.localhost
default_region: US
data_dir: $dir
log: {level: warn}
http: {listen: "$MIMIGW_METRICS", profiling: true}
$busyaml
sip:
  listen: {udp: "127.0.0.1:$MIMIGW_PORT", tcp: "127.0.0.1:$MIMIGW_PORT"}
  trusted: {cidrs: ["127.0.0.0/8"]}
  outbound_proxy: "sip:127.0.0.1:9;transport=tcp"
YAML
  "$WORK/mimigw" serve --config "$dir/mimigw.yaml" >"$WORK/mimigw.out" 2>"$WORK/mimigw.err" &
  MIMIGW_PID=$!
  PIDS+=("$MIMIGW_PID")
  for _ in $(seq 1 300); do
    curl -sf "http://$MIMIGW_METRICS/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$MIMIGW_PID" 2>/dev/null || { cat "$WORK/mimigw.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "mimigw not ready" >&2; exit 1
}

start_edge() {
  "$WORK/edgebench" -udp "127.0.0.1:$EDGE_PORT" -tcp "127.0.0.1:$EDGE_PORT" >"$WORK/edge.out" 2>"$WORK/edge.err" &
  EDGE_PID=$!
  PIDS+=("$EDGE_PID")
  for _ in $(seq 1 300); do
    grep -q ready "$WORK/edge.out" 2>/dev/null && return 0
    kill -0 "$EDGE_PID" 2>/dev/null || { cat "$WORK/edge.err" >&2; exit 1; }
    sleep 0.1
  done
  echo "edgebench not ready" >&2; exit 1
}

start_kamailio() {
  kamailio -f deploy/bench/kamailio.cfg -DD -E -w "$WORK" -P "$WORK/kamailio.pid" -m 64 -M 8 \
    >"$WORK/kamailio.out" 2>&1 &
  KAMAILIO_PID=$!
  PIDS+=("$KAMAILIO_PID")
  for _ in $(seq 1 100); do
    [ -n "$(ps -o pid= --ppid "$KAMAILIO_PID" 2>/dev/null)" ] && { sleep 0.5; return 0; }
    kill -0 "$KAMAILIO_PID" 2>/dev/null || { cat "$WORK/kamailio.out" >&2; exit 1; }
    sleep 0.1
  done
  echo "kamailio not ready" >&2; exit 1
}

# pids_of TARGET: the processes whose memory counts.
pids_of() {
  case $1 in
    mimigw) echo "$MIMIGW_PID" ;;
    nats) echo "${NATS_PID:-}" ;;
    edge) echo "$EDGE_PID" ;;
    kamailio) echo "$KAMAILIO_PID" $(ps -o pid= --ppid "$KAMAILIO_PID") ;;
  esac
}

# sample TARGET OUT: every 0.2 s, "rss_kb pss_kb" summed over the target's
# processes, until killed.
sample() {
  local target=$1 out=$2
  while :; do
    local rss=0 pss=0
    for p in $(pids_of "$target"); do
      r=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
      s=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
      rss=$((rss + ${r:-0})); pss=$((pss + ${s:-0}))
    done
    echo "$rss $pss" >>"$out"
    sleep 0.2
  done
}

# --- one step ------------------------------------------------------------

# buckets OUT: the edge's answer-time histogram for MESSAGE ("le count"
# lines), scraped from mimigw's /metrics.
buckets() {
  curl -s "http://$MIMIGW_METRICS/metrics" |
    awk '/^mimigw_sip_answer_seconds_bucket\{.*method="MESSAGE"/ {
           match($0, /le="[^"]*"/); le=substr($0, RSTART+4, RLENGTH-5); print le, $NF }' >"$1"
}

# server_p99 BEFORE AFTER: the smallest histogram bound under which 99% of
# the answers of a step fell, in ms ("<=X").
server_p99() {
  awk 'FILENAME==ARGV[1] {before[$1]=$2; next} {le=$1; if (le=="+Inf") le=1e9; print le, $2-before[$1]}' "$1" "$2" | sort -g |
    awk '{le[NR]=$1; c[NR]=$2; total=$2} END{ if (total==0) {print "n/a"; exit}
         for (i=1;i<=NR;i++) if (c[i] >= 0.99*total) { if (le[i]>=1e9) print ">10000"; else printf "<=%g", le[i]*1000; exit } }'
}

# column CSV NAME: the value of column NAME in the last line of a SIPp
# statistics file (';'-separated).
column() {
  awk -F';' -v name="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==name) c=i} END{print $c}' "$1"
}

# seconds "HH:MM:SS:mmm" elapsed time to seconds.
seconds() {
  awk -F: '{printf "%.3f", $1*3600+$2*60+$3+$4/1000}' <<<"$1"
}

run_step() {
  local target=$1 transport=$2 rate=$3 port
  case $target in mimigw) port=$MIMIGW_PORT ;; edge) port=$EDGE_PORT ;; *) port=$KAMAILIO_PORT ;; esac
  local flag=u1; [ "$transport" = tcp ] && flag=t1
  local calls=$((rate * DURATION))
  local dir
  dir=$(mktemp -d "$WORK/$target-$transport-$rate.XXXX")
  cp deploy/sipp/uac_message.xml "$dir/"
  [ "$target" = mimigw ] && buckets "$dir/buckets.before"
  sample "$target" "$dir/mem" &
  local sampler=$! nsampler=
  if [ "$target" = mimigw ] && [ -n "$EXTERNAL_NATS" ]; then sample nats "$dir/nats-mem" & nsampler=$!; fi
  local cmd=(sipp -sf uac_message.xml -key caller +15551230001 -key callee +15551230002 -key text "load test"
    -t "$flag" -r "$rate" -rp 1000 -m "$calls" -l "$((rate * 2))" -nostdin -i 127.0.0.1 -buff_size 4194304
    -timeout "$((DURATION + 40))s" -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1000
    "127.0.0.1:$port")
  echo "$target/$transport $rate/s: (cd $dir && ${cmd[*]})" >>"$WORK/commands"
  (cd "$dir" && timeout "$((DURATION + 60))" "${cmd[@]}" >"$dir/sipp.out" 2>&1) || true
  kill "$sampler" $nsampler; wait "$sampler" $nsampler 2>/dev/null || true
  local sp99=n/a
  if [ "$target" = mimigw ]; then buckets "$dir/buckets.after"; sp99=$(server_p99 "$dir/buckets.before" "$dir/buckets.after"); fi

  local ok failed retrans elapsed achieved p99 rss pss
  ok=$(column "$dir/stat.csv" "SuccessfulCall(C)")
  failed=$(column "$dir/stat.csv" "FailedCall(C)")
  retrans=$(column "$dir/stat.csv" "Retransmissions(C)")
  elapsed=$(seconds "$(column "$dir/stat.csv" "ElapsedTime(C)")")
  achieved=$(awk -v n="$ok" -v s="$elapsed" 'BEGIN{ if (s>0) printf "%d", n/s; else print 0 }')
  p99=$(cat "$dir"/uac_message_*_rtt.csv 2>/dev/null | awk -F';' '$2 ~ /^[0-9.]+$/ {print $2}' | sort -g |
        awk '{v[NR]=$1} END{ if (NR==0) {print "n/a"; exit} i=int(NR*0.99); if (i<NR*0.99) i++; if (i<1) i=1; printf "%.2f", v[i] }')
  read -r rss pss < <(sort -n "$dir/mem" | tail -1)
  # RSS over the first and the last tenth of the step: growth over a long
  # step (the soak: DURATION=600) shows here.
  local early late
  read -r early late < <(awk '{v[NR]=$1} END{n=int(NR/10); if (n<1) n=1; a=0; b=0;
    for (i=1;i<=n;i++) {a+=v[i]; b+=v[NR-n+i]} printf "%d %d\n", a/n/1024, b/n/1024}' "$dir/mem")
  local pass=no
  if [ "${failed:-1}" = 0 ] && [ "${retrans:-1}" = 0 ] && [ "${ok:-0}" = "$calls" ] &&
     [ "$achieved" -ge $((rate * 95 / 100)) ]; then pass=yes; fi
  printf "%-9s %-4s %7d/s  sent %8d  ok %8s  failed %6s  retrans %6s  achieved %6s/s  p99 %7s ms (server %8s ms)  peak RSS %6d MB  PSS %6d MB  RSS %4d->%4d MB  %s\n" \
    "$target" "$transport" "$rate" "$calls" "$ok" "$failed" "$retrans" "$achieved" "$p99" "$sp99" \
    "$((rss / 1024))" "$((pss / 1024))" "$early" "$late" "$pass" | tee -a "$WORK/results"
  if [ -f "$dir/nats-mem" ]; then
    awk '{v[NR]=$1; if ($1>m) m=$1} END{n=int(NR/10); if (n<1) n=1; a=0; b=0; for (i=1;i<=n;i++) {a+=v[i]; b+=v[NR-n+i]}
      printf "  (nats-server beside it: peak RSS %d MB, RSS %d->%d MB)\n", m/1024, a/n/1024, b/n/1024}' "$dir/nats-mem" | tee -a "$WORK/results"
  fi
  [ "$pass" = yes ]
}

# warm_up TARGET TRANSPORT: a short run at a low rate, so that the first
# measured step does not pay for heap growth and JetStream creating its
# files.
warm_up() {
  local port=$MIMIGW_PORT flag=u1
  [ "$1" = kamailio ] && port=$KAMAILIO_PORT
  [ "$1" = edge ] && port=$EDGE_PORT
  [ "$2" = tcp ] && flag=t1
  mkdir -p "$WORK/warmup" && cp deploy/sipp/uac_message.xml "$WORK/warmup/"
  (cd "$WORK/warmup" && timeout "$((WARMUP + 60))" sipp -sf uac_message.xml -key caller +15551230001 \
    -key callee +15551230002 -key text warmup -t "$flag" -r 1000 -m "$((WARMUP * 1000))" -nostdin -i 127.0.0.1 \
    -timeout "$((WARMUP + 30))s" "127.0.0.1:$port" >/dev/null 2>&1) || true
}

# --- the run -------------------------------------------------------------

# stop PID: end a target we started and wait for it.
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

# Each target runs afresh for each transport, so that peak memory is the
# transport's own.
for transport in $TRANSPORTS; do
  for target in $TARGETS; do
    case $target in
      mimigw) start_mimigw; pid=$MIMIGW_PID ;;
      edge) start_edge; pid=$EDGE_PID ;;
      kamailio) start_kamailio; pid=$KAMAILIO_PID ;;
      *) echo "unknown target $target" >&2; exit 1 ;;
    esac
    [ "$WARMUP" -gt 0 ] && warm_up "$target" "$transport"
    best=0
    for rate in $RATES; do
      ok=no
      for _ in $(seq 0 "$RETRIES"); do
        if run_step "$target" "$transport" "$rate"; then ok=yes; break; fi
      done
      [ "$ok" = yes ] || break
      best=$rate
    done
    stop "$pid"
    if [ -n "${NATS_PID:-}" ]; then stop "$NATS_PID"; NATS_PID=; fi
    echo "$target $transport: highest clean rate $best/s" | tee -a "$WORK/summary"
  done
done

echo
echo "== results (also in $WORK/results)"
cat "$WORK/results"
echo
cat "$WORK/summary"
echo
echo "== commands"
cat "$WORK/commands"
