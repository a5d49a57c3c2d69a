"""Settings, built once from environment variables and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCAL_MODEL = "local/smollm2-135m"
LOCAL_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_GGUF = PROJECT_ROOT / "data" / "models" / LOCAL_GGUF_NAME


@dataclass(frozen=True)
class LocalModelConfig:
    """How the embedded llama.cpp model is loaded."""

    gguf_path: Path
    n_ctx: int = 16384
    n_parallel: int = 8
    n_threads: int = 0  # 0: one per core

    @property
    def context_per_request(self) -> int:
        """Tokens one request may use: the KV cache is unified, capped at 8k (SmolLM2's training length)."""
        return min(self.n_ctx, 8192)


@dataclass(frozen=True)
class Settings:
    """Everything configurable, with defaults that work offline."""

    data_dir: Path
    database_url: str
    default_model: str = LOCAL_MODEL
    fusor_model: str = LOCAL_MODEL
    judge_model: str = LOCAL_MODEL
    timeout_s: float = 120.0
    max_retries: int = 2
    concurrency: int = 8
    local: LocalModelConfig = field(default_factory=lambda: LocalModelConfig(DEFAULT_GGUF))
    admin_password: str | None = field(default=None, repr=False)  # gates spending and changing pages; never shown
    router_config: Path | None = None  # a litellm Router config (YAML/JSON): model groups over several endpoints

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read FUSION_* variables; unset ones fall back to the offline defaults."""
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("FUSION_DATA_DIR", PROJECT_ROOT / "data"))
        default_model = env.get("FUSION_MODEL", LOCAL_MODEL)
        router_config = env.get("FUSION_ROUTER_CONFIG", "").strip()
        return cls(
            data_dir=data_dir,
            database_url=env.get("FUSION_DATABASE_URL", f"sqlite:///{data_dir / 'fusion.db'}"),
            default_model=default_model,
            fusor_model=env.get("FUSION_FUSOR_MODEL", default_model),
            judge_model=env.get("FUSION_JUDGE_MODEL", default_model),
            timeout_s=_number(env, "FUSION_TIMEOUT_S", 120.0, float),
            max_retries=_number(env, "FUSION_MAX_RETRIES", 2, int),
            concurrency=_number(env, "FUSION_CONCURRENCY", 8, int),
            local=LocalModelConfig(
                gguf_path=Path(env.get("FUSION_LOCAL_GGUF", DEFAULT_GGUF)),
                n_ctx=_number(env, "FUSION_LOCAL_CTX", 16384, int),
                n_parallel=_number(env, "FUSION_LOCAL_SLOTS", 8, int),
                n_threads=_number(env, "FUSION_LOCAL_THREADS", 0, int),
            ),
            admin_password=env.get("FUSION_ADMIN_PASSWORD") or None,
            router_config=Path(router_config).expanduser() if router_config else None,
        )


def _number(env: dict[str, str], name: str, default, kind):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative (got {raw})")
    return value
