#!/usr/bin/env bash
# Everything that needs a GPU, in two calls of under 10 minutes each on an H100/H200:
#
#   bench-b128   resdyn bench: resdyn vs (a) a per-image DataLoader loop and (b) the best plain loop (compiled),
#                resnet20, resnet56, lm-resnet56, revnet38, odenet at batch 128; the odenet row is also the
#                ODENet vs torchdiffeq's example loop (its (a) is that example)
#   fast         time to 94% on Fashion-MNIST from process start: resdyn train -c fashion-mnist-fast
#   revnet       RevNet's peak CUDA memory against ResNet's (benchmarks/revnet_memory.py)
#   resnet20     the Fashion-MNIST ResNet-20 recipe in full (30 epochs; target >= 93%)
#   bench-b512   resnet56 at batch 512
#   bench-compiled  resnet20 at batch 128 with resdyn's train.compile (CUDA graphs on CUDA) against the same loops
#   r56-vs-lm    ResNet-56 vs LM-ResNet-56, 3 seeds each, the recipe shortened to 3 epochs
#
# Each step runs under `timeout` with the budget beside it (seconds; fast, revnet, resnet20 and bench-compiled as
# measured on the first H200 run, benchmarks/results/gpu-2026-12-04/, with room; the others estimated; bench-b128 ran out of 180 s there after three models), its output
# in <out>/<step>.log and its exit code and wall time in <out>/steps.tsv (124: it ran out of time). The budgets sum
# to 935 s, more than one 10-minute device call: split it, e.g. `--only bench-b128,fast,revnet` (465 s) and
# `--only resnet20,bench-b512,bench-compiled,r56-vs-lm` (470 s). Results go to benchmarks/results/gpu-<date>/
# (the run folders' checkpoints stay in runs/gpu-<date>/);
# <out>/summary.md gathers the figures.
#
#   benchmarks/gpu.sh [--data-dir DIR] [--out DIR]     # DIR holding Fashion-MNIST's files, else $RESDYN_DATA,
#                                                       # else data/fashion-mnist/ (git-ignored) if it is there
#   benchmarks/gpu.sh --dry-run                         # print every command and check its arguments; no GPU needed
#   benchmarks/gpu.sh --only fast,resnet20              # only these steps (a rerun of what failed or ran out of time)
#
# Uses `python3` (or $PYTHON) with PYTHONPATH=. from the repository root; installs nothing.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
DATA_DIR="${RESDYN_DATA:-}"
OUT=""
ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --data-dir) DATA_DIR="${2:?--data-dir needs a directory}"; shift ;;
        --out) OUT="${2:?--out needs a directory}"; shift ;;
        --only) ONLY=",${2:?--only needs step names},"; shift ;;
        -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu.sh: unknown argument $1 (valid: --dry-run, --data-dir DIR, --out DIR)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "$DATA_DIR" ] && [ -d data/fashion-mnist ]; then DATA_DIR=data/fashion-mnist; fi
if [ -n "$DATA_DIR" ]; then export RESDYN_DATA="$DATA_DIR"; fi
DATE=$(date +%Y-%m-%d)
OUT="${OUT:-benchmarks/results/gpu-$DATE}"
RUNS="runs/gpu-$DATE"
PY="${PYTHON:-python3}"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"  # keeps a caller's path (e.g. carried wheels)

# Checks every command's arguments as the command itself would read them, without running it: a `resdyn` command
# through resdyn's parser and then the config a train command resolves, the suite a compare command loads, or
# bench's own checks; a script with its --dry-run. One Python process reads the commands, one per line.
check_commands() {
    "$PY" - "$1" <<'EOF'
import runpy
import shlex
import sys

from resdyn import bench
from resdyn.cli import build_parser, resolve_train_config
from resdyn.compare import load_suite
from resdyn.errors import ResdynError
from resdyn.recipes import find_recipe

failed = 0
for line in open(sys.argv[1]).read().splitlines():
    argv = shlex.split(line)
    try:
        if argv[:2] == ["-m", "resdyn"]:
            args = build_parser().parse_args(argv[2:])
            if args.command == "train":
                resolve_train_config(args)[0].validate()
            elif args.command == "compare":
                load_suite(find_recipe(args.config), args.set, args.out)
            elif args.command == "bench":
                bench.check(args)
        else:
            sys.argv = [argv[0], *argv[1:], "--dry-run"]
            runpy.run_path(argv[0], run_name="__main__")
        print(f"ok: {line}")
    except ResdynError as e:
        print(f"FAILED: {line}\n  error: {e}")
        failed = 1
    except SystemExit as e:  # argparse refused the arguments (its message is on stderr)
        if e.code not in (0, None):
            print(f"FAILED: {line}\n  error: exit {e.code}")
            failed = 1
sys.exit(failed)
EOF
}

FAILED=0
if [ "$DRY" = 1 ]; then
    CHECKS=$(mktemp)
    trap 'rm -f "$CHECKS"' EXIT
fi
step() {  # step NAME BUDGET_S COMMAND...
    local name=$1 budget=$2
    shift 2
    if [ -n "$ONLY" ] && [[ "$ONLY" != *",$name,"* ]]; then return; fi
    if [ "$DRY" = 1 ]; then
        echo "[$name, ${budget} s] $*"
        printf '%q ' "${@:2}" >> "$CHECKS"
        echo >> "$CHECKS"
        return
    fi
    echo "== $name (budget ${budget} s): $*"
    echo "$name: $*" >> "$OUT/commands.txt"
    local start end rc
    start=$(date +%s.%N)
    timeout --signal=INT --kill-after=10 "$budget" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(awk "BEGIN {printf \"%.1f\", $end - $start}")" "$budget" \
        >> "$OUT/steps.tsv"
    tail -n 3 "$OUT/$name.log"
    [ "$rc" = 0 ] || FAILED=1
}

keep() {  # keep RUN: the small files of a run folder (or a suite's folder) in the results; no checkpoints
    [ -d "$RUNS/$1" ] || return 0
    local dest
    dest=$(cd "$OUT" && pwd)  # absolute: --out may be relative or absolute
    (cd "$RUNS" && find "$1" -type f \( -name '*.json' -o -name '*.jsonl' -o -name '*.toml' -o -name '*.md' \
        -o -name '*.png' -o -name '*.html' \) -exec cp --parents {} "$dest/" \;)
}

if [ "$DRY" = 0 ]; then
    if ! "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
        echo "gpu.sh: no CUDA GPU here; run it on one, or check it with --dry-run" >&2
        exit 1
    fi
    mkdir -p "$OUT" "$RUNS"
    : > "$OUT/commands.txt"
    printf 'step\texit\twall_s\tbudget_s\n' > "$OUT/steps.tsv"
    {
        echo "date: $(date -Iseconds)"
        echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (dirty or no git)')"
        nvidia-smi -L 2>/dev/null || true
        "$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
        echo "data: ${RESDYN_DATA:-(not set: resdyn searches its usual places)}"
    } > "$OUT/machine.txt"
    cat "$OUT/machine.txt"
fi

# Budgets (H200 estimates): bench compiles the (b) loop of four models (~20-40 s each) and times 3 x 30 steps
# of three loops per model; the fast recipe's target is 20 s; revnet_memory is 9 models x 2 steps; the ResNet-20
# recipe is 30 epochs of 469 steps at ~4 ms a step (eager, launch-bound) plus evaluation, ~2 min; ResNet-56 is
# ~3x the kernels: 6 runs x 3 epochs at ~6 s an epoch.
step bench-b128 300 "$PY" -m resdyn bench --device cuda --batch-size 128 --steps 30 --warmup 10 --repeats 3 \
    --json "$OUT/bench_cuda_b128.json"
step fast 120 "$PY" -m resdyn train -c fashion-mnist-fast --device cuda --out "$RUNS/fast" --overwrite \
    --progress lines
step revnet 45 "$PY" benchmarks/revnet_memory.py --device cuda --out "$OUT/revnet_memory_cuda.json"
step resnet20 200 "$PY" -m resdyn train -c fashion-mnist-resnet20 --device cuda --out "$RUNS/resnet20" \
    --overwrite --progress lines
step bench-b512 50 "$PY" -m resdyn bench --device cuda --models resnet56 --batch-size 512 --steps 20 --warmup 10 \
    --repeats 3 --json "$OUT/bench_cuda_b512.json"
step bench-compiled 100 "$PY" -m resdyn bench --device cuda --models resnet20 --batch-size 128 --steps 30 \
    --warmup 10 --repeats 3 --set train.compile=true --json "$OUT/bench_cuda_b128_compiled.json"
step r56-vs-lm 120 "$PY" -m resdyn compare -c suites/fashion-mnist-resnet56-vs-lm --out "$RUNS/r56-vs-lm" \
    --set train.epochs=3 --set train.progress=off

if [ "$DRY" = 1 ]; then
    echo
    if check_commands "$CHECKS"; then
        echo "gpu.sh: every command's arguments check"
        exit 0
    fi
    echo "gpu.sh: some commands' arguments fail" >&2
    exit 1
fi
for run in fast resnet20 r56-vs-lm; do keep "$run"; done
"$PY" benchmarks/gpu_summary.py "$OUT" > "$OUT/summary.md" && cat "$OUT/summary.md"
echo "results in $OUT/"
exit "$FAILED"
