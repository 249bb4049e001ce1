"""One running llama-server: its process and lifecycle, log file, failure reasons, orphan guard, checks, requests, speeds."""
