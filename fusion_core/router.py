"""A litellm Router configuration file (FUSION_ROUTER_CONFIG), parsed and checked; llm.py builds the Router.

The file has the shape of the litellm proxy's `config.yaml`: `model_list` holds deployments, and the
deployments that share a `model_name` form a model group the router balances over; the optional
`router_settings` are passed to `litellm.Router` as keyword arguments (routing_strategy, fallbacks,
num_retries, timeout, allowed_fails, cooldown_time, ...).

Unknown top-level keys are an error (a misspelt `router_settings` would silently drop the fallbacks);
the proxy-only sections `litellm_settings`, `general_settings` and `environment_variables` are ignored
with a warning, so a proxy config can be used as it is.

Credentials written literally in the file (`api_key: sk-...`) are wrapped in `Secret` as soon as they
are read: they never appear in a repr, in `describe()`, in a log line or in an error message, and only
`model_list()` / `router_settings()` (called when the Router is built) reveal them. `os.environ/NAME`
references are kept as written; litellm resolves them.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import yaml

from .errors import ConfigError

log = logging.getLogger(__name__)

ENV_PREFIX = "os.environ/"
IGNORED_SECTIONS = ("litellm_settings", "general_settings", "environment_variables")
DEPLOYMENT_KEYS = ("model_name", "litellm_params", "model_info", "rpm", "tpm")
FALLBACK_SETTINGS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
_SECRET_ENDINGS = ("key", "secret", "token", "password", "credentials")
# litellm's longest backoff between two retries (MAX_RETRY_DELAY), allowed for in the call budget.
MAX_RETRY_DELAY_S = 8.0


class Secret:
    """A credential written literally in the file: shown as *** everywhere, revealed only to litellm."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        """The literal value, for building the Router and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


@dataclass(frozen=True)
class Deployment:
    """One serving endpoint of a model group."""

    group: str
    model: str
    api_base: str | None = field(default=None, repr=False)  # may carry user info or a key in its query
    env_refs: tuple[str, ...] = ()  # the os.environ/NAME variables its credentials come from
    timeout_s: float | None = None
    params: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # litellm_params, Secrets inside
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # model_info, rpm, tpm

    @property
    def public_base(self) -> str | None:
        """The API base without user info, query or fragment (which may carry credentials)."""
        return public_url(self.api_base) if self.api_base else None


@dataclass(frozen=True)
class GroupSummary:
    """A model group as the UI and experiment configs show it."""

    name: str
    deployments: int
    models: tuple[str, ...]
    api_bases: tuple[str, ...]


@dataclass(frozen=True)
class RouterSummary:
    """What a router config routes, with no credentials: safe to display and to store."""

    path: str
    routing_strategy: str
    groups: tuple[GroupSummary, ...]
    fallbacks: dict[str, list[str]]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for experiment configs."""
        return {
            "path": self.path,
            "routing_strategy": self.routing_strategy,
            "groups": [
                {"name": g.name, "deployments": g.deployments, "models": list(g.models), "api_bases": list(g.api_bases)}
                for g in self.groups
            ],
            "fallbacks": {k: list(v) for k, v in self.fallbacks.items()},
        }


@dataclass(frozen=True)
class RouterConfig:
    """A parsed, checked router config file."""

    path: Path
    deployments: tuple[Deployment, ...]
    settings: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # router_settings, Secrets inside

    @property
    def groups(self) -> dict[str, tuple[Deployment, ...]]:
        """Model group name → its deployments, in file order."""
        groups: dict[str, list[Deployment]] = {}
        for deployment in self.deployments:
            groups.setdefault(deployment.group, []).append(deployment)
        return {name: tuple(members) for name, members in groups.items()}

    def group_for(self, model: str) -> str | None:
        """The group a model string names, or None when it is not a router group."""
        name = model.strip()
        return name if any(d.group == name for d in self.deployments) else None

    def fallbacks_for(self, group: str) -> tuple[str, ...]:
        """Every group the router may fall back to from `group` (all fallback kinds, then default_fallbacks)."""
        targets: list[str] = []
        for setting in FALLBACK_SETTINGS:
            for item in self.settings.get(setting) or []:
                targets.extend(_as_list(item.get(group, [])))
        targets.extend(self.settings.get("default_fallbacks") or [])
        return tuple(dict.fromkeys(t for t in targets if t != group))

    def num_retries(self, default: int) -> int:
        """The router's retries per group (router_settings.num_retries, else `default`)."""
        value = self.settings.get("num_retries")
        return default if value is None else int(value)

    def timeout_s(self, default: float) -> float:
        """The router's timeout for one deployment attempt (router_settings.timeout, else `default`)."""
        value = self.settings.get("timeout")
        return default if value is None else float(value)

    def call_budget(self, group: str, timeout_s: float, max_retries: int) -> float:
        """Seconds one routed call may take: every retry on every fallback group, each bounded, plus backoffs."""
        groups = (group, *self.fallbacks_for(group))
        per_attempt = max(
            [self.timeout_s(timeout_s), *(d.timeout_s for g in groups for d in self.groups.get(g, ()) if d.timeout_s)]
        )
        attempts = (self.num_retries(max_retries) + 1) * len(groups)
        return attempts * per_attempt + (attempts - 1) * MAX_RETRY_DELAY_S

    def missing_env(self, group: str) -> list[str]:
        """Unset variables named by os.environ/ references, when every deployment of `group` needs one."""
        deployments = self.groups.get(group, ())
        missing = [[n for n in d.env_refs if not os.environ.get(n)] for d in deployments]
        if deployments and all(missing):
            return list(dict.fromkeys(n for names in missing for n in names))
        return []

    def describe(self) -> RouterSummary:
        """Groups, deployment counts, models, API bases, routing strategy and fallbacks; never a credential."""
        groups = tuple(
            GroupSummary(
                name=name,
                deployments=len(members),
                models=tuple(dict.fromkeys(d.model for d in members)),
                api_bases=tuple(dict.fromkeys(d.public_base for d in members if d.public_base)),
            )
            for name, members in self.groups.items()
        )
        fallbacks = {name: list(self.fallbacks_for(name)) for name in self.groups if self.fallbacks_for(name)}
        strategy = str(self.settings.get("routing_strategy") or "simple-shuffle")
        return RouterSummary(path=str(self.path), routing_strategy=strategy, groups=groups, fallbacks=fallbacks)

    def model_list(self) -> list[dict[str, Any]]:
        """The model_list for litellm.Router, credentials revealed: pass it to litellm only, never log it."""
        return [
            {"model_name": d.group, "litellm_params": _reveal(d.params), **_reveal(d.extra)} for d in self.deployments
        ]

    def router_settings(self) -> dict[str, Any]:
        """router_settings as litellm.Router keyword arguments, credentials revealed (same care as model_list)."""
        return _reveal(self.settings)

    def secrets(self) -> tuple[str, ...]:
        """The literal credential values (4+ characters), longest first, so they can be scrubbed from text."""
        values = {s.reveal() for s in _secrets_in([(d.params, d.extra) for d in self.deployments], self.settings)}
        values.update(v for d in self.deployments if d.api_base for v in _url_secrets(d.api_base))
        return tuple(sorted((v for v in values if len(v) >= 4), key=len, reverse=True))

    def scrub(self, text: str) -> str:
        """Replace every literal credential of this file in `text` with [redacted]."""
        for value in self.secrets():
            text = text.replace(value, "[redacted]")
        return text


def public_url(url: str) -> str:
    """`url` without user info, query and fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "[unparsable url]"
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _url_secrets(url: str) -> list[str]:
    """The password and query values of a URL: what public_url leaves off."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    return [v for v in (parts.password, *(value for _, value in parse_qsl(parts.query))) if v]


def load_router_config(path: Path) -> RouterConfig:
    """Read and check a router config file (YAML or JSON); raises ConfigError saying what to fix."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such router config file; fix FUSION_ROUTER_CONFIG or create the file "
            "(data/router.example.yaml shows the format)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the router config ({type(exc).__name__}); check the file") from None
    return parse_router_config(text, path)


def parse_router_config(text: str, path: Path) -> RouterConfig:
    """Parse and check the text of a router config file; `path` names it in messages."""
    raw = _parse(text, path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping with a model_list (see data/router.example.yaml)")
    unknown = [str(k) for k in raw if k not in ("model_list", "router_settings", *IGNORED_SECTIONS)]
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {', '.join(unknown)}; use model_list and router_settings "
            f"({', '.join(IGNORED_SECTIONS)} are read by the litellm proxy only, and ignored here)"
        )
    for section in IGNORED_SECTIONS:
        if section in raw:
            hint = "; export those variables yourself" if section == "environment_variables" else ""
            log.warning("%s: %s is for the litellm proxy and is ignored here%s", path, section, hint)
    entries = raw.get("model_list")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            f"{path}: model_list is missing or empty; add at least one deployment "
            "(model_name: <group>, litellm_params: {model: <litellm model string>})"
        )
    deployments = tuple(_deployment(path, i, entry) for i, entry in enumerate(entries))
    settings = _router_settings(path, raw.get("router_settings"), {d.group for d in deployments})
    return RouterConfig(path=path, deployments=deployments, settings=settings)


def _parse(text: str, path: Path) -> Any:
    """YAML (or JSON for *.json); error messages give the position, never the offending line's text."""
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix the syntax"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(f"{path}: not valid YAML ({where}{problem}); fix the syntax") from None


def _deployment(path: Path, index: int, entry: Any) -> Deployment:
    where = f"{path}: model_list[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a mapping with model_name and litellm_params")
    group = entry.get("model_name")
    if not isinstance(group, str) or not group.strip():
        raise ConfigError(f"{where} has no model_name; add the group name to use as the model string")
    group = group.strip()
    where = f"{where} ({group})"
    if "*" in group or "@" in group:
        raise ConfigError(f"{where}: model_name must be a plain name (no '*' wildcard, no '@'); name the group")
    unknown = [str(k) for k in entry if k not in DEPLOYMENT_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(DEPLOYMENT_KEYS)}")
    params = entry.get("litellm_params")
    if not isinstance(params, dict) or not isinstance(params.get("model"), str) or not params["model"].strip():
        raise ConfigError(
            f"{where} has no litellm_params.model; set the litellm model string, e.g. openai/<served model name>"
        )
    for name in ("api_base", "api_version"):
        if params.get(name) is not None and not isinstance(params[name], str):
            raise ConfigError(f"{where}: litellm_params.{name} must be a string")
    _check_counts(where, "litellm_params.", params, ("rpm", "tpm", "max_parallel_requests"))
    _check_counts(where, "", entry, ("rpm", "tpm"))
    timeout = params.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0):
        raise ConfigError(f"{where}: litellm_params.timeout must be a positive number of seconds")
    wrapped = _wrap_secrets(where + ": litellm_params.", params)
    extra = _wrap_secrets(where + ": ", {k: v for k, v in entry.items() if k not in ("model_name", "litellm_params")})
    return Deployment(
        group=group,
        model=params["model"].strip(),
        api_base=params.get("api_base"),
        env_refs=_env_refs(where, params),
        timeout_s=float(timeout) if timeout is not None else None,
        params=wrapped,
        extra=extra,
    )


def _check_counts(where: str, prefix: str, mapping: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        value = mapping.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ConfigError(f"{where}: {prefix}{name} must be a whole number ≥ 0")


def _router_settings(path: Path, raw: Any, groups: set[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    where = f"{path}: router_settings"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping of litellm.Router options (routing_strategy, fallbacks, ...)")
    if "model_list" in raw:
        raise ConfigError(f"{where}: model_list belongs at the top level of the file; move it there")
    settings = dict(raw)
    for setting in FALLBACK_SETTINGS:
        settings[setting] = _fallbacks(where, setting, settings.get(setting), groups)
        if not settings[setting]:
            del settings[setting]
    default = settings.get("default_fallbacks")
    if default is not None:
        names = _as_list(default)
        _check_groups(where, "default_fallbacks", names, groups)
        settings["default_fallbacks"] = names
    _check_counts(where, "", settings, ("num_retries", "allowed_fails"))
    for name in ("timeout", "cooldown_time", "stream_timeout"):
        value = settings.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ConfigError(f"{where}: {name} must be a number of seconds ≥ 0")
    if "routing_strategy" in settings and not isinstance(settings["routing_strategy"], str):
        raise ConfigError(f"{where}: routing_strategy must be a name such as simple-shuffle")
    return _wrap_secrets(where + ".", settings)


def _fallbacks(where: str, setting: str, raw: Any, groups: set[str]) -> list[dict[str, list[str]]]:
    """Normalised fallbacks: a list of {group: [groups...]}, every name a known group."""
    if raw is None:
        return []
    shape = f"{where}.{setting} must be a list of {{group: [fallback groups]}}, e.g. [{{my-llama: [my-backup]}}]"
    if not isinstance(raw, list):
        raise ConfigError(shape)
    normalised = []
    for item in raw:
        if not isinstance(item, dict) or not item:
            raise ConfigError(shape)
        for source, targets in item.items():
            names = _as_list(targets)
            if not isinstance(source, str) or not all(isinstance(n, str) for n in names):
                raise ConfigError(shape)
            _check_groups(where, setting, [source, *names], groups)
            normalised.append({source: names})
    return normalised


def _check_groups(where: str, setting: str, names: list[Any], groups: set[str]) -> None:
    for name in names:
        if name not in groups:
            raise ConfigError(
                f"{where}.{setting} names unknown model group {name!r}; known groups: {', '.join(sorted(groups))}"
            )


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _is_secret_name(name: str) -> bool:
    name = name.lower()
    return name.endswith(_SECRET_ENDINGS) or "secret" in name or "password" in name


def _wrap_secrets(where: str, mapping: dict[str, Any]) -> dict[str, Any]:
    """A copy with literal credentials wrapped in Secret (nested mappings too); references stay as written."""
    wrapped: dict[str, Any] = {}
    for name, value in mapping.items():
        if isinstance(value, dict):
            wrapped[name] = _wrap_secrets(f"{where}{name}.", value)
        elif isinstance(name, str) and _is_secret_name(name) and value is not None:
            if not isinstance(value, str):
                raise ConfigError(f"{where}{name} must be a string (a literal value or os.environ/NAME)")
            wrapped[name] = value if value.startswith(ENV_PREFIX) else Secret(value)
        else:
            wrapped[name] = value
    return wrapped


def _env_refs(where: str, params: dict[str, Any]) -> tuple[str, ...]:
    names = []
    for name, value in params.items():
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            variable = value[len(ENV_PREFIX) :].strip()
            if not variable:
                raise ConfigError(f"{where}: litellm_params.{name} is {ENV_PREFIX!r} without a variable name")
            names.append(variable)
    return tuple(names)


def _reveal(value: Any) -> Any:
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def _secrets_in(*values: Any) -> list[Secret]:
    found: list[Secret] = []
    for value in values:
        if isinstance(value, Secret):
            found.append(value)
        elif isinstance(value, dict):
            found.extend(_secrets_in(*value.values()))
        elif isinstance(value, list | tuple):
            found.extend(_secrets_in(*value))
    return found
