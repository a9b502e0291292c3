"""Explain an MD5 mismatch: the library versions that shape the pixels, and the decoder check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import PIL
import PIL.Image
import scipy
from PIL import features

from pgtools.errors import PgtoolsError
from pgtools.sources.celeba_hq.inputs import Entry

REFERENCE_FILE = "000001.jpg"
REFERENCE_MD5 = "9cad8178d6cb0196b36f7b34bc5eb6d3"  # pixels of CelebA's 000001.jpg under libjpeg 8d


def reference_decode(img_dir: Path) -> str:
    """Whether ``img_dir/000001.jpg`` decodes to the original tool's reference pixels, in words."""
    path = img_dir / REFERENCE_FILE
    if not path.is_file():
        return f"{REFERENCE_FILE} not present, decoder not checked"
    with PIL.Image.open(path) as img:
        digest = hashlib.md5(img.convert("RGB").tobytes()).hexdigest()
    if digest == REFERENCE_MD5:
        return f"{REFERENCE_FILE} decodes to the reference pixels (md5 {REFERENCE_MD5})"
    return f"{REFERENCE_FILE} decodes to md5 {digest}, not the reference {REFERENCE_MD5} of libjpeg 8d"


def versions() -> str:
    """The versions of the libraries whose arithmetic determines the proc image."""
    jpeg = features.version("libjpeg_turbo")
    decoder = f"libjpeg-turbo {jpeg}" if jpeg else f"libjpeg {features.version('jpg')}"
    return f"Pillow {PIL.__version__}, {decoder}, numpy {np.__version__}, scipy {scipy.__version__}"


def mismatch_error(entry: Entry, check: str, img_dir: Path) -> PgtoolsError:
    """The error for a failed ``proc`` or ``final`` MD5 check of ``entry``."""
    where = f"idx {entry.idx} ({entry.orig_file})"
    if check == "final":
        return PgtoolsError(
            f"{where}: final_md5 mismatch although proc_md5 matched; the image_list.txt row or the "
            "delta member is damaged"
        )
    return PgtoolsError(
        f"{where}: proc_md5 mismatch, the aligned image differs from the one the delta was made for. "
        "Likely cause: a JPEG decoder or Pillow resampling other than the original's (Pillow 3.1.1, "
        f"libjpeg 8d). Here: {versions()}; {reference_decode(img_dir)}. Tolerant mode rebuilds "
        "near-exact images instead"
    )
