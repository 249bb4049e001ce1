"""Llama Launcher: a desktop launcher for llama.cpp's llama-server."""

__version__ = "0.1.0"
APP_NAME = "llama-launcher"
