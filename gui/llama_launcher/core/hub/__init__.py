"""Getting models from the Hugging Face Hub: search, the quant that fits this machine (headers read
remotely, judged by the memory estimate), and a resumable download into the cache or a models folder."""
