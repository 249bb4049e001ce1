"""Persistence and safety underneath everything: per-user folders, validated state files, typed JSON, safe text, the LAN key."""
