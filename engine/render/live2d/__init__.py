"""The `live2d` appearance: the user's own Live2D model, drawn by a GL worker process."""
