#!/usr/bin/env bash
# The main job on the bundled sample (no downloads): rebuild a CelebA-HQ-style pyramid from the
# originals + encrypted deltas in deltas/sample, look at it, train a small PGGAN on it on the CPU
# (preset quick-32: 4x4 grown to 32x32 over 18 kimg, a few minutes), and sample from the trained
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
  out/sample-hq-grid.png   the 5 training faces at 256x256: cartoon faces on coloured backgrounds
  $run/reals.png
                           the same faces at 32x32 as the trainer sees them (mirrored at random)
  out/sample-fakes.png     16 faces drawn by the trained generator (G_ema) at 32x32, shown 2x: the
                           training faces again (yellow faces on red/blue, pink ones on yellow-green),
                           blurrier and a little noisy
  $run/fakes*.png
                           the same latents every 2 kimg (numbered by images shown): noise, blobs at
                           4x4 and 8x8, faces from 16x16 on
  $run/training_curves.png
                           D and G loss per tick over the 4, 8, 16 and 32 px phases (shaded bands):
                           D's loss (minus the critic's distance estimate) climbs back towards 0
                           from 8x8 on as G's faces get closer to the reals
END
