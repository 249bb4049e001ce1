"""This machine: CPU, memory and GPUs, network ports and addresses, the environment child processes get."""
