"""The HTTP service and its web page: ``resnetkit serve``, on FastAPI and uvicorn."""

from .config import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str) -> object:
    # create_app pulls in FastAPI; ``from resnetkit.serve import ServeConfig`` should not.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
