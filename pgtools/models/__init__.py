"""Progressive GAN models: networks, loss, schedule, data feed, training loop and the public API.

    from pgtools.models import load
    model = load("training-runs/00000-celebahq-1024")
    images = model.generate(model.build_noise(16, seed=0))

``load`` and ``Model`` are imported on first use, so that light submodules (the presets) do not
pull in PyTorch.
"""

__all__ = ["Model", "load"]


def __getattr__(name: str):
    if name in __all__:
        from pgtools.models import api

        return getattr(api, name)
    raise AttributeError(f"module 'pgtools.models' has no attribute {name!r}")
