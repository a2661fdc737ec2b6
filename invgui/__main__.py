"""``python -m invgui`` is the ``invgui`` command."""

from .cli import main

raise SystemExit(main())
