"""``python -m llama_launcher`` behaves exactly like the ``llama-launcher`` command."""

import sys

from llama_launcher.cli import main

if __name__ == "__main__":
    sys.exit(main())
