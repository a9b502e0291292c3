#!/usr/bin/env bash
# The main job on the bundled sample (no downloads): rebuild a CelebA-HQ-style pyramid from the
# originals + encrypted deltas in deltas/sample, look at it, train a small PGGAN on it on the CPU
# for a few minutes (preset quick-32: 14 kimg, 4x4 grown to 32x32), and sample from the trained
# generator. Everything lands in out/.
set -euo pipefail
cd "$(dirname "$0")/.."
pgtools=.venv/bin/pgtools
mkdir -p out
set -x
$pgtools create_celeba_hq out/sample-hq.h5 deltas/sample/celeba deltas/sample/deltas --overwrite
$pgtools inspect out/sample-hq.h5
$pgtools grid out/sample-hq.h5 out/sample-hq-grid.png --resolution 256 --overwrite
$pgtools train out/sample-hq.h5 --preset quick-32 --outdir out/runs
run=$(ls -d out/runs/*-quick-32 | tail -n 1)
$pgtools generate "$run" --count 16 --grid out/sample-fakes.png --size 64 --seed 0 --overwrite
set +x
cat <<END

Done. What to look at:
  out/sample-hq-grid.png         the 5 training faces at 256x256 (the pyramid's 256 level)
  $run/reals.png   the training faces at 32x32, as the trainer sees them (mirrored too)
  out/sample-fakes.png           16 faces drawn by the trained generator (G_ema), 32x32 shown at 64x64:
                                 the training faces again, backgrounds and face colours included
  $run/fakes*.png  the same latents every 2 kimg: noise, then blobs at 4x4 and 8x8, faces from 16x16
  $run/training_curves.png  D and G loss per tick, one band per resolution
END
