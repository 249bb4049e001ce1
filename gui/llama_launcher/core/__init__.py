"""Qt-free core: everything the window and the CLI decide, read, run and measure."""
