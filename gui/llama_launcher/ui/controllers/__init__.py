"""The window's state and its jobs, without widgets: one controller per concern.

Controllers hold what the window knows (the llama-server in use, the selected model, the plan, the
running server, a tune) and run the slow work through ``ui/jobs.py``; widgets show what controllers
emit and forward what the user asks. Calls flow down (the window calls a controller), signals flow
up (a controller says what changed); no controller touches a widget.
"""
