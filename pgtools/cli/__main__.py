"""``python -m pgtools.cli`` (what ``torchrun ... -m pgtools.cli train ...`` runs on every rank)."""

from pgtools.cli import main

if __name__ == "__main__":  # not when spawned data readers import this module as __mp_main__
    main(prog_name="pgtools")
