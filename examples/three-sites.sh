#!/usr/bin/env bash
# A veil deployment on one machine: a coordinator and three sites, each
# training on its own share of a labelled CSV, over QUIC on 127.0.0.1 with
# secure aggregation and distributed differential privacy; then the model
# scores the held-out rows.
#
#   examples/three-sites.sh DATA.csv [OUT_DIR]
#
# DATA.csv: numeric feature columns, then `label` (the shipped sets in
# data/). Its test split is DATA.test_idx.txt beside it when present (else
# every fifth row). OUT_DIR (default: a new directory under /tmp) receives
# everything: certs/, the three sites' files, the server's state/.
#
# VEIL names the veil binary (default: target/release/veil, built if
# missing). ROUNDS (default 20) and EPSILON (default 8) set the run;
# EPSILON=off runs without differential privacy, and then with the secure
# statistics round and secure evaluation (below). MODEL (default logistic;
# mlp:W1,W2,… or cnn:C for square image rows) is the task's model.
# KIND=regression makes it a regression (the label is a number, as in
# data/diabetes.csv): model `linear` by default, MSE and R² reported.
#
# Step by step, as three hospitals and a coordinator would do it:
#  1. the coordinator makes the deployment CA and its server certificate;
#  2. each site makes its own keys (`veil certs keygen`): its private keys
#     never leave it; it hands the coordinator its request and public key;
#  3. the coordinator enrolls each site (`veil certs enroll`): a signed
#     certificate back to the site, its public identity into the roster;
#  4. the coordinator writes its config with the [task] (model, columns,
#     classes, local training) and the privacy budget ε; the server
#     calibrates its noise for every release of its rounds;
#  5. each site runs `veil client --data its.csv`; the server runs rounds
#     until the budget's rounds are done, writing checkpoint.safetensors;
#  6. `veil predict` scores the held-out rows.
# Standardisation: with EPSILON=off, a secure statistics round gives it
# (each site sends only its masked sums; the bounds, each feature's range,
# are taken here as the power of ten above its largest value: an operator
# knows its columns' ranges), and every fifth round a secure evaluation
# scores the model on the rows each site holds out (rounds.jsonl). With
# DP on, the noise on three sites' sums would swamp both, so the demo takes
# the per-feature means and deviations from the pooled training rows (a
# shortcut: a deployment would use known values) and evaluates only at the
# end, with `veil predict`.
set -euo pipefail

DATA=${1:?usage: examples/three-sites.sh DATA.csv [OUT_DIR]}
OUT=${2:-$(mktemp -d /tmp/veil-three-sites.XXXXXX)}
ROUNDS=${ROUNDS:-20}
EPSILON=${EPSILON:-8}
KIND=${KIND:-classification}
if [ "$KIND" = regression ]; then MODEL=${MODEL:-linear}; else MODEL=${MODEL:-logistic}; fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VEIL=${VEIL:-$ROOT/target/release/veil}
if [ ! -x "$VEIL" ]; then
    (cd "$ROOT" && cargo build --release -p veil-cli)
fi
DATA=$(cd "$(dirname "$DATA")" && pwd)/$(basename "$DATA")
IDX=${DATA%.csv}.test_idx.txt
mkdir -p "$OUT"
cd "$OUT"
echo "working in $OUT"

# The rows: a test split, and the training rows dealt to three sites.
header=$(head -1 "$DATA")
tail -n +2 "$DATA" > rows.csv
if [ -f "$IDX" ]; then cp "$IDX" test_idx.txt; else awk 'NR % 5 == 0 { print NR - 1 }' rows.csv > test_idx.txt; fi
awk 'NR == FNR { test[$1 + 1] = 1; next } (FNR in test) { print > "test-rows.csv"; next } { print > "train-rows.csv" }' test_idx.txt rows.csv
{ echo "$header"; cat test-rows.csv; } > test.csv
for s in 1 2 3; do
    { echo "$header"; awk -v s="$s" '(NR - 1) % 3 == s - 1' train-rows.csv; } > "site-$s.csv"
done

# The task: columns, classes, and the standardisation (see the shortcut
# above).
features=$(echo "$header" | tr ',' '\n' | grep -vx label | awk '{ printf "%s\"%s\"", (NR > 1 ? ", " : ""), $0 }')
if [ "$KIND" = regression ]; then
    # No classes; the label is standardised (and bounded) as one more
    # column.
    labelled='kind = "regression"'
    last=0
else
    labelled="classes = [$(awk -F, '{ print $NF }' train-rows.csv | sort -u | awk '{ printf "%s\"%s\"", (NR > 1 ? ", " : ""), $0 }')]"
    last=1
fi
if [ "$EPSILON" = off ]; then
    stats=$(awk -F, -v last="$last" '{ for (i = 1; i <= NF - last; i++) { a = ($i < 0 ? -$i : $i); if (a > b[i]) b[i] = a } k = NF - last }
        END { for (i = 1; i <= k; i++) { p = 1; while (p < b[i]) p *= 10; while (b[i] > 0 && p / 10 >= b[i] && p > 1e-6) p /= 10;
            bounds = bounds (i > 1 ? ", " : "") sprintf("%.6g", p) }
            print "holdout = 0.2"; print "[statistics]"; print "bounds = [" bounds "]";
            print "[evaluation]"; print "every = 5" }' train-rows.csv)
else
    stats=$(awk -F, -v last="$last" '{ for (i = 1; i <= NF - last; i++) { s[i] += $i; q[i] += $i * $i } n++; k = NF - last }
        END { for (i = 1; i <= k; i++) { m = s[i] / n; v = q[i] / n - m * m; d = (v > 1e-12 ? sqrt(v) : 1);
            mean = mean (i > 1 ? ", " : "") sprintf("%.6g", m); sd = sd (i > 1 ? ", " : "") sprintf("%.6g", d) }
            print "mean = [" mean "]"; print "std = [" sd "]" }' train-rows.csv)
fi

# 1-3: the CA, the server certificate, and each site's keys, enrolled.
"$VEIL" certs init --dir certs > /dev/null
"$VEIL" certs issue --dir certs --server localhost > /dev/null
for s in 1 2 3; do
    "$VEIL" certs keygen --dir "site-$s" --name "site-$s" > /dev/null
    "$VEIL" certs enroll --dir certs --client "site-$s" \
        --identity "site-$s/site-$s.identity.pub" --csr "site-$s/site-$s.csr" > /dev/null
    cp "certs/site-$s.pem" "site-$s/"
done

# 4: the server's config. With a target ε the server calibrates the noise
# of the sum of the 3 sites' shares over its model's parameters, for all
# its rounds, and logs the noise multiplier.
port=${PORT:-$((20000 + RANDOM % 20000))}
privacy=""
if [ "$EPSILON" != off ]; then
    privacy=$(printf '[privacy]\nepsilon = %s\ndelta = 1e-5' "$EPSILON")
fi
cat > server.toml <<EOF
listen = "127.0.0.1:$port"
state_dir = "state"
[tls]
ca = "certs/ca.pem"
cert = "certs/server.pem"
key = "certs/server.key"
roster = "certs/roster.toml"
[rounds]
rounds = $ROUNDS
min_clients = 3
max_clients = 3
start_delay_ms = 1000
phase_timeout_ms = 10000
clip_norm = 0.3
scale = 218453.0
[secagg]
complete_graph_threshold = 3
$privacy
[task]
model = "$MODEL"
features = [$features]
$labelled
epochs = 5
batch_size = 16
learning_rate = 0.1
$stats
EOF
for s in 1 2 3; do
    cat > "site-$s.toml" <<EOF
server = "127.0.0.1:$port"
server_name = "localhost"
identity = "site-$s/site-$s.identity"
source = "csv"
data = "site-$s.csv"
[tls]
ca = "certs/ca.pem"
cert = "site-$s/site-$s.pem"
key = "site-$s/site-$s.key"
roster = "certs/roster.toml"
EOF
done

# 5: the run (the sites stop when the server finishes; on failure, this
# script stops them).
trap 'jobs -p | xargs -r kill 2> /dev/null' EXIT
"$VEIL" server --config server.toml 2> server.log &
server=$!
for s in 1 2 3; do
    "$VEIL" client --config "site-$s.toml" 2> "site-$s.log" &
done
if ! wait "$server"; then
    echo "the server failed; see $OUT/server.log" >&2
    exit 1
fi
wait

# 6: the model on the held-out rows, and what the secure evaluations found.
if [ "$KIND" = regression ] && grep -q '"kind":"evaluate"' state/rounds.jsonl; then
    echo "secure evaluations (on the rows the sites held out, by round):"
    grep '"kind":"evaluate"' state/rounds.jsonl |
        sed 's/.*"training_round":\([0-9]*\).*"r2":\(null\|[0-9.eE+-]*\).*/\1 \2/' |
        awk '{ printf "  round %s: R² %s\n", $1, ($2 == "null" ? "-" : sprintf("%.4f", $2)) }'
elif grep -q '"kind":"evaluate"' state/rounds.jsonl; then
    echo "secure evaluations (accuracy on the rows the sites held out, by round):"
    grep '"kind":"evaluate"' state/rounds.jsonl |
        sed 's/.*"training_round":\([0-9]*\).*"accuracy":\([0-9.eE+-]*\).*"auc":\(null\|[0-9.eE+-]*\).*/\1 \2 \3/' |
        awk '{ printf "  round %s: accuracy %.4f, ROC-AUC %s\n", $1, $2, ($3 == "null" ? "-" : sprintf("%.4f", $3)) }'
fi
"$VEIL" predict --model state/checkpoint.safetensors --data test.csv
