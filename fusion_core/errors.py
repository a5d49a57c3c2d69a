"""The errors fusion_core raises. Each message says what to do about it."""

from __future__ import annotations


class FusionError(Exception):
    """Base class: anything the app or CLI should show as one clear line."""


class ConfigError(FusionError):
    """Bad input or configuration (empty prompt, N out of range, bad option)."""


class ModelError(FusionError):
    """A model call failed."""

    def __init__(self, message: str, *, model: str = "", transient: bool = False):
        super().__init__(message)
        self.model = model
        self.transient = transient


class UnknownModelError(ModelError):
    """The model string names no provider litellm knows."""


class MissingKeyError(ModelError):
    """The provider needs an API key that is not set."""

    def __init__(self, model: str, env_vars: list[str]):
        names = ", ".join(env_vars)
        super().__init__(f"{model}: no API key; set the environment variable {names}", model=model)
        self.env_vars = env_vars


class ModelUnreachableError(ModelError):
    """The provider or API base could not be reached."""


class ModelTimeoutError(ModelError):
    """The call took longer than the configured timeout."""


class ContextOverflowError(ModelError):
    """The request does not fit in the model's context window."""


class LocalModelMissingError(ModelError):
    """The embedded GGUF file is not on disk."""


class AllCandidatesFailedError(FusionError):
    """Sampling produced no usable candidate; the message lists every failure."""

    def __init__(self, failures: list[str]):
        lines = "; ".join(failures) if failures else "no candidates were requested"
        super().__init__(f"every candidate failed: {lines}")
        self.failures = failures


class StoreError(FusionError):
    """The database could not be opened or written."""
