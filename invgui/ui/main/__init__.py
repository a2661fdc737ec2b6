"""The main window: the window, its docks and menus, and the views drawn from its state."""
