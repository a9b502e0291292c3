"""Reading the TF release's network pickles without TensorFlow and without running their code.

NVIDIA's ``karras2018iclr-*.pkl`` files hold a tuple ``(G, D, Gs)`` of ``tfutil.Network`` objects
pickled through their ``__getstate__``: a dict ``version, name, static_kwargs, build_module_src,
build_func_name, variables`` with ``variables`` a list of ``(name, numpy array)``. A restricted
unpickler rebuilds exactly that: ``tfutil.Network`` becomes :class:`TFNetwork` (a plain record; the
module source is kept as text and never executed) and numpy arrays come from numpy's own
reconstructors. Any other global in the file (a ``__reduce__`` payload, a StyleGAN ``dnnlib``
network, ...) is refused before anything is called.
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass, field

import numpy as np

from pgtools.errors import PgtoolsError

try:  # numpy >= 2 keeps its pickle helpers here; numpy.core is a deprecated alias
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

NETWORK_STATE_KEYS = {"version", "name", "static_kwargs", "build_module_src", "build_func_name", "variables"}


@dataclass
class TFNetwork:
    """The pickled state of one ``tfutil.Network``: its build function's options and variables."""

    name: str = ""
    build_func_name: str = ""
    static_kwargs: dict = field(default_factory=dict)
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    build_module_src: str = ""  # the release's networks.py, as text (never executed)

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict) or set(state) != NETWORK_STATE_KEYS or state["version"] != 2:
            raise PgtoolsError("the pickled tfutil.Network has an unknown layout (expected version 2 "
                               "with " + ", ".join(sorted(NETWORK_STATE_KEYS)) + ")")
        self.name = str(state["name"])
        self.build_func_name = str(state["build_func_name"])
        self.static_kwargs = dict(state["static_kwargs"])
        self.variables = {str(name): np.asarray(value) for name, value in state["variables"]}
        self.build_module_src = str(state["build_module_src"])


def _dtype(*args) -> np.dtype:
    """numpy.dtype for numeric arrays only (no object arrays)."""
    dtype = np.dtype(*args)
    if dtype.kind not in "biuf":
        raise PgtoolsError(f"the pickle holds an array of dtype {dtype}; only numeric arrays are accepted")
    return dtype


def _latin1(text: str, encoding: str) -> bytes:
    """``_codecs.encode`` as protocol 2 uses it for bytes (latin-1 only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise PgtoolsError(f"the pickle calls _codecs.encode with {encoding!r}; only latin-1 bytes are accepted")
    return text.encode("latin-1")


def _frombuffer(buffer: bytes, dtype: np.dtype, shape: tuple, order: str) -> np.ndarray:
    """numpy's protocol-5 array reconstructor, for numeric dtypes."""
    return np.frombuffer(buffer, dtype=_dtype(dtype)).reshape(shape, order=order).copy()


_ALLOWED = {
    ("tfutil", "Network"): TFNetwork,
    ("_codecs", "encode"): _latin1,
    ("numpy", "dtype"): _dtype,
    ("numpy", "ndarray"): np.ndarray,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(_module, "scalar")] = _multiarray.scalar
    _ALLOWED[(_module.replace("multiarray", "numeric"), "_frombuffer")] = _frombuffer


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            hint = " (a StyleGAN/dnnlib pickle, which pgtools does not read)" if module.startswith("dnnlib") else ""
            raise PgtoolsError(f"refusing to load {module}.{name} from the pickle{hint}: only the TF "
                               "release's tfutil.Network and numpy arrays are read, and no code from "
                               "the file is run") from None


def read_tf_pickle(path: str | os.PathLike) -> tuple[TFNetwork, ...]:
    """The ``(G, D, Gs)`` networks of an NVIDIA Progressive GAN pickle.

    Raises:
        PgtoolsError: the file is not such a pickle or holds anything else (nothing is executed).
    """
    try:
        data = open(path, "rb").read()
    except OSError as err:
        raise PgtoolsError(f"{path}: cannot read ({err.strerror})") from None
    try:
        networks = _Unpickler(io.BytesIO(data)).load()
    except PgtoolsError as err:
        raise PgtoolsError(f"{path}: {err}") from None
    except Exception as err:  # damaged data raises many types
        raise PgtoolsError(f"{path}: not a readable network pickle ({type(err).__name__}: {err})") from None
    if (not isinstance(networks, tuple) or len(networks) != 3
            or not all(isinstance(net, TFNetwork) for net in networks)):
        raise PgtoolsError(f"{path}: expected a pickled tuple (G, D, Gs) of tfutil.Network, as the "
                           "Progressive GAN TF release writes")
    return networks
