"""``python -m webvid.cli ...`` (and ``torchrun -m webvid.cli ...``): the ``webvid`` command."""

from webvid.cli import main

if __name__ == "__main__":
    main()
