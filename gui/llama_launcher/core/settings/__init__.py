"""What the user chose: per-model launch settings declared once, and the settings file."""
