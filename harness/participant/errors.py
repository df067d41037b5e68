"""The participant side's one error: an image or its wheelhouse could not be made."""


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says why and what to do."""
