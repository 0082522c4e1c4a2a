#!/usr/bin/env bash
# The V-D4RL agents' accelerator checks (issues 13 and 14), one short call on a lent GPU machine:
# Offline DV2's wall time per 1k model / agent updates and its RSSM benchmark, DrQ+BC's updates/s.
#
#   bash experiments/vd4rl/accelerator_checks.sh download   # here (registry access): the wheels
#   bash experiments/vd4rl/accelerator_checks.sh run        # there, with carry=[".whl"]
#
# The GPU machine (Python 3.12) has jax (CUDA), flax, optax, chex, orbax, absl, etils and
# simplejson and reaches no registry, so the rest of the import chain travels as wheels in .whl/
# (listed in .git/info/exclude; well under the 64 MiB a call carries), at the versions this
# project pins (third_party/constraints.txt), installed with --no-index --no-deps.
set -euo pipefail
WHEELS=.whl
BINARY="ml-collections distrax tensorflow-probability dm-tree dm-env tensorflow-datasets \
  tensorflow-metadata immutabledict toml gast decorator"
case "${1:-run}" in
  download)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    mkdir -p "$WHEELS"
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
      --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 -c third_party/constraints.txt -d "$WHEELS" $BINARY
    .venv/bin/python -m pip wheel --no-deps -c third_party/constraints.txt -w "$WHEELS" promise
    du -sh "$WHEELS"
    ;;
  run)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site "$WHEELS"/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    out="${OUT:-/tmp/out}"
    mkdir -p "$out"
    python3 -m experiments.vd4rl.accelerator_checks --updates=200 | tee "$out/dv2.md"
    python3 -m benchmarks.perf rssm --steps=20 | tee "$out/perf_rssm.txt"
    python3 -m benchmarks.perf drqbc --steps=50 --ram_steps=0 | tee "$out/perf_drqbc.txt"
    ;;
  *) echo "usage: $0 download|run" >&2; exit 2 ;;
esac
