"""The shipped configs as a resource package: default.yaml, the demo chat and the characters.

Nothing here is code; `streamer.assets` finds these files through importlib.resources.
"""
