#!/usr/bin/env bash
# The main job on the bundled sample (no downloads): rebuild a CelebA-HQ-style pyramid from the
# originals + encrypted deltas in deltas/sample, look at it, train a small PGGAN on it on the CPU
# for a few minutes, and sample from the trained generator. Everything lands in out/.
set -euo pipefail
cd "$(dirname "$0")/.."
pgtools=.venv/bin/pgtools
mkdir -p out
set -x
$pgtools create_celeba_hq out/sample-hq.h5 deltas/sample/celeba deltas/sample/deltas --overwrite
$pgtools inspect out/sample-hq.h5
$pgtools grid out/sample-hq.h5 out/sample-hq-grid.png --resolution 256 --overwrite
$pgtools train out/sample-hq.h5 --outdir out/runs --resolution 32 --fmap_base 1024 --fmap_max 128 --latent_dim 128 \
    --minibatch 16 --stabilize_kimg 1 --transition_kimg 1 --total_kimg 8 --mirror \
    --tick_kimg 0.5 --image_snapshot_kimg 2 --snapshot_kimg 2
run=$(ls -d out/runs/*-sample-hq-32 | tail -n 1)
$pgtools generate "$run" --count 16 --grid out/sample-fakes.png --seed 0 --overwrite
