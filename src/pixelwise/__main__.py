"""``python -m pixelwise``: the same as the ``pixelwise`` command."""

from pixelwise.cli import main

main()
