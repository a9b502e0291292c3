"""The CLI starts light: help and inspect load none of the heavy stacks (counted, not timed)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pgtools.cli.datasets import CIFAR100_LABEL_TYPES, TRANSFORM_NAMES
from pgtools.pyramid import write_pyramid
from pgtools.sources.cifar import CIFAR100_LABELS
from pgtools.sources.transforms import TRANSFORMS

HEAVY = ("torch", "scipy", "cv2", "cryptography", "lmdb")
RUN = """
import sys
from click.testing import CliRunner
from pgtools.cli import main
result = CliRunner().invoke(main, sys.argv[1:])
assert result.exit_code == 0, result.output
print(",".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def loaded_after(*args: str) -> set[str]:
    """Top-level packages in sys.modules after running ``pgtools ARGS`` in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, check=True)
    return set(done.stdout.strip().split(","))


@pytest.mark.parametrize("args", [["--help"], ["create_celeba", "--help"], ["train", "--help"]])
def test_help_loads_no_heavy_package_nor_numpy_or_h5py(args):
    loaded = loaded_after(*args)
    assert "click" in loaded and "pgtools" in loaded
    assert loaded.isdisjoint({*HEAVY, "numpy", "h5py", "PIL"}), sorted(loaded & {*HEAVY, "numpy", "h5py", "PIL"})


def test_inspect_loads_h5py_but_no_heavy_package(tmp_path):
    path = tmp_path / "x.h5"
    write_pyramid(path, [np.zeros((2, 3, 4, 4), np.uint8)], resolution=4, channels=3)
    loaded = loaded_after("inspect", str(path))
    assert {"h5py", "numpy"} <= loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_option_choices_are_the_sources():
    assert CIFAR100_LABEL_TYPES == list(CIFAR100_LABELS)
    assert TRANSFORM_NAMES == list(TRANSFORMS)
