"""The desktop window (PySide6): widgets, item models and the workers that run core code off the GUI thread."""
