"""How much memory a launch takes: launch settings that matter, the estimate, llama.cpp's own figures and projection."""
