"""The shipped default models (package data of the wheel: `importlib.resources.files("mtdepth.weights")`)."""
