"""The `sprites` appearance: a PNG-tuber character of layered PNG parts posed by a YAML rig."""
