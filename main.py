"""Start invgui's main window: ``python main.py`` (same as the ``invgui`` command)."""

from invgui.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
