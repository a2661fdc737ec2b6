"""The reconstruction methods.  Importing the package fills the registry (pure data, no torch):
every lookup of a method by name (:func:`.base.method`) finds all of them."""

from . import registry  # noqa: F401
