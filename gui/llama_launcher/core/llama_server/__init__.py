"""Getting and knowing a llama-server binary: discovery, probing, devices, builds, releases, downloads."""
