"""Qt-free core of invgui: images, representations, methods, metrics.

Nothing under ``invgui.core`` may import Qt or pyqtgraph (a test checks it).
"""
