"""Widgets shared by the windows: image panes, parameter forms, plots, the layer tree, the run list, themes."""
