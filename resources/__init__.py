"""Files invgui reads at run time (shipped decoders, icons).  Installed as the package
``invgui.resources`` (see pyproject.toml and invgui/core/resources.py); screenshots stay out of
the wheel: only the README shows them."""
