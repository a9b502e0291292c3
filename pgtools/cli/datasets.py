"""create_* commands: one function per raw dataset format, each writing one pyramid.

Each command imports its source module when it runs, so that ``pgtools --help`` and the other
commands do not load OpenCV, LMDB and the like.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import click

from pgtools.atomic import check_target
from pgtools.cli.common import echo, option, output_options, workers_option, write_source
from pgtools.pyramid.partial import remove_stale_partial

if TYPE_CHECKING:
    from pgtools.sources import Source

CIFAR100_LABEL_TYPES = ["fine", "coarse"]  # the keys of sources.cifar.CIFAR100_LABELS (numpy stays unloaded)
TRANSFORM_NAMES = ["center-crop", "center-crop-wide", "resize"]  # the keys of sources.transforms.TRANSFORMS
OUTPUT = click.Path(dir_okay=False)
INPUT = click.Path()  # existence is checked by the sources, with messages naming what is expected
SHOWN_KEYS = 5
SKIPPED = (  # what a source may have left out: count attribute, names attribute, words for the summary
    ("non_image_files", "non_image_names", "non-image file(s):"),
    ("skipped_records", "skipped_keys", "undecodable record(s): keys"),
    ("skipped_files", "skipped_names", "unreadable or undecodable image file(s):"),
)


def _found(source: Source, official: int | None) -> str:
    attrs = source.attrs
    if "lmdb_records" in attrs:
        line = f"Found {attrs['lmdb_records']:,} records in {attrs['source']}"
        return line + (f"; writing {source.count:,} images" if source.count is not None else "")
    found = attrs.get("source_images", source.count)
    line = f"Found {found:,} images in {attrs['source']}"
    return line + (f" (the official set has {official:,})" if official and found != official else "")


def _create(output: str, open_source: Callable[[], Source], official: int | None = None) -> None:
    """Check the target, open the source, write it and report: the body of every create_* command."""
    params = click.get_current_context().params
    check_target(Path(output), params["overwrite"])
    stale = remove_stale_partial(output)
    if stale:
        echo(f"Removed {stale}, left by an interrupted run", params["quiet"])
    source = open_source()
    echo(_found(source, official), params["quiet"])
    write_source(output, source, overwrite=params["overwrite"], compression=params["compression"],
                 compat=params["compat"], quiet=params["quiet"], options=params)
    for count_key, names_key, what in SKIPPED:
        skipped = source.attrs.get(count_key, 0)
        if skipped:
            names = json.loads(source.attrs[names_key])[:SHOWN_KEYS]
            more = ", ..." if skipped > len(names) else ""
            echo(f"Skipped {skipped:,} {what} {', '.join(names)}{more}", params["quiet"])


def _labels_option(classes: str) -> Callable:
    return option("--export_labels", is_flag=True,
                  help=f"Also store one-hot labels ({classes}) in OUTPUT and as <name>-labels.npy next to it.")


@click.command("create_mnist")
@click.argument("output", type=OUTPUT)
@click.argument("mnist_dir", type=INPUT)
@_labels_option("10 classes")
@output_options
def create_mnist(output: str, mnist_dir: str, export_labels: bool, **_) -> None:
    """Create a 32x32 grayscale dataset from MNIST's train-*-idx*-ubyte.gz files.

    \b
    Example:
      pgtools create_mnist mnist-32x32.h5 ~/mnist --export_labels
    """
    from pgtools.sources.mnist import OFFICIAL_COUNT, open_mnist

    _create(output, lambda: open_mnist(mnist_dir, export_labels=export_labels), OFFICIAL_COUNT)


@click.command("create_mnist_rgb")
@click.argument("output", type=OUTPUT)
@click.argument("mnist_dir", type=INPUT)
@option("--num_images", type=click.IntRange(min=1), default=1_000_000, show_default=True,
        help="Composite images to create.")
@option("--random_seed", type=click.IntRange(0, 2**32 - 1), default=123, show_default=True,
        help="Seed of the digit choices (numpy's legacy generator, as the original).")
@output_options
def create_mnist_rgb(output: str, mnist_dir: str, num_images: int, random_seed: int, **_) -> None:
    """Create 32x32 RGB images whose channels are three random MNIST digits.

    \b
    Example:
      pgtools create_mnist_rgb mnist-rgb-32x32.h5 ~/mnist --num_images 1000000 --random_seed 123
    """
    from pgtools.sources.mnist import OFFICIAL_COUNT, open_mnist_rgb

    _create(output, lambda: open_mnist_rgb(mnist_dir, num_images=num_images, random_seed=random_seed),
            OFFICIAL_COUNT)


@click.command("create_cifar10")
@click.argument("output", type=OUTPUT)
@click.argument("cifar10_dir", type=INPUT)
@_labels_option("10 classes")
@output_options
def create_cifar10(output: str, cifar10_dir: str, export_labels: bool, **_) -> None:
    """Create a 32x32 RGB dataset from CIFAR-10's python pickles data_batch_1 ... data_batch_5.

    \b
    Example:
      pgtools create_cifar10 cifar10-32x32.h5 ~/cifar10 --export_labels
    """
    from pgtools.sources.cifar import open_cifar10

    _create(output, lambda: open_cifar10(cifar10_dir, export_labels=export_labels), 50_000)


@click.command("create_cifar100")
@click.argument("output", type=OUTPUT)
@click.argument("cifar100_dir", type=INPUT)
@_labels_option("100 fine or 20 coarse classes")
@option("--label_type", type=click.Choice(CIFAR100_LABEL_TYPES), default="fine", show_default=True,
        help="Which labels --export_labels stores.")
@output_options
def create_cifar100(output: str, cifar100_dir: str, export_labels: bool, label_type: str, **_) -> None:
    """Create a 32x32 RGB dataset from CIFAR-100's python pickle 'train'.

    \b
    Example:
      pgtools create_cifar100 cifar100-32x32.h5 ~/cifar100 --export_labels
    """
    from pgtools.sources.cifar import open_cifar100

    _create(output, lambda: open_cifar100(cifar100_dir, export_labels=export_labels, label_type=label_type), 50_000)


@click.command("create_lsun")
@click.argument("output", type=OUTPUT)
@click.argument("lmdb_dir", type=INPUT)
@option("--resolution", type=click.IntRange(min=1), default=256, show_default=True,
        help="Output side in pixels, a power of two.")
@option("--max_images", type=click.IntRange(min=1), default=None, help="Stop after this many images [default: all].")
@option("--skip_bad", is_flag=True, help="Skip undecodable records (counted in the summary) instead of failing.")
@workers_option
@output_options
def create_lsun(output: str, lmdb_dir: str, resolution: int, max_images: int | None, skip_bad: bool,
                workers: int | None, **_) -> None:
    """Create an RGB dataset from an LSUN category's LMDB: centre crops resized with LANCZOS.

    \b
    Example:
      pgtools create_lsun lsun-bedroom-256x256.h5 ~/lsun/bedroom_train_lmdb --resolution 256 --max_images 100000
    """
    from pgtools.sources.lsun import open_lsun

    _create(output, lambda: open_lsun(lmdb_dir, resolution=resolution, max_images=max_images, skip_bad=skip_bad,
                                      workers=workers))


@click.command("create_celeba")
@click.argument("output", type=OUTPUT)
@click.argument("celeba_dir", type=INPUT)
@option("--cx", type=int, default=89, show_default=True, help="Column of the crop centre.")
@option("--cy", type=int, default=121, show_default=True, help="Row of the crop centre.")
@workers_option
@output_options
def create_celeba(output: str, celeba_dir: str, cx: int, cy: int, workers: int | None, **_) -> None:
    """Create a 128x128 RGB dataset from CelebA's aligned images (img_align_celeba_png/ or the JPEGs).

    \b
    Example:
      pgtools create_celeba celeba-128x128.h5 ~/celeba --cx 89 --cy 121
    """
    from pgtools.sources.celeba import OFFICIAL_COUNT, open_celeba

    _create(output, lambda: open_celeba(celeba_dir, cx=cx, cy=cy, workers=workers), OFFICIAL_COUNT)


@click.command("create_custom")
@click.argument("output", type=OUTPUT)
@click.argument("image_dir", type=INPUT)
@option("--resolution", type=click.IntRange(min=1), default=None,
        help="Make every image this size (a power of two) by --transform [default: take the images as they are: "
             "square, power-of-two, all alike].")
@option("--transform", type=click.Choice(TRANSFORM_NAMES), default=None,
        help="How --resolution is reached, as StyleGAN2-ADA's dataset_tool [default: resize].")
@option("--skip_bad", is_flag=True, help="Skip unreadable or undecodable image files (counted in the summary) "
                                         "instead of failing.")
@workers_option
@output_options
def create_custom(output: str, image_dir: str, resolution: int | None, transform: str | None, skip_bad: bool,
                  workers: int | None, **_) -> None:
    """Create a dataset from a folder of images (subfolders included), taken as they are or made R x R.

    Files whose suffix is no image format are skipped and counted. Without --resolution the images
    must be square with a power-of-two side, all of one size, and are stored exactly as decoded.

    \b
    Example:
      pgtools create_custom mine.h5 ~/my_images
      pgtools create_custom photos-256.h5 ~/photos --resolution 256 --transform center-crop --skip_bad
    """
    from pgtools.sources.custom import open_custom

    _create(output, lambda: open_custom(image_dir, resolution=resolution, transform=transform, skip_bad=skip_bad,
                                        workers=workers))


COMMANDS = [create_mnist, create_mnist_rgb, create_cifar10, create_cifar100, create_lsun, create_celeba, create_custom]
