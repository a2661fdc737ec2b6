"""Start invgui's main window: ``python main.py`` (same as the ``invgui`` command)."""

from invgui.app import main

if __name__ == "__main__":
    raise SystemExit(main())
