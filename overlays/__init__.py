"""The OBS overlay pages as a resource package, served by the panel under /overlays/.

Nothing here is code; `streamer.assets` finds these files through importlib.resources.
"""
