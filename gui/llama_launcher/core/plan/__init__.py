"""The pure planner: argv with a reason per flag, extra arguments, the speculative decision."""
