"""The built-in `procedural` appearance: a torch-drawn character, its look, and the runtimes that run it."""
