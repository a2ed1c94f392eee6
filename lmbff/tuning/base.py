"""The backend registry, the base config and combinations (``prefix+ln``). Free of torch: a config
names the module that implements it (``implementation``) and imports it only when it is applied, so
the command line can list every backend and its options without loading a model library."""

from __future__ import annotations

import importlib
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from ..errors import ConfigError
from ..options import check_options, option

_REGISTRY: dict[str, type[TuningConfig]] = {}
# Former names still accepted (with a deprecation message), e.g. in states saved under them.
_RENAMED = {"prompt": "soft-prompt"}

ParamGroups = list[dict[str, Any]]
"""torch optimizer parameter groups: ``[{"params": [...], "lr": ...}, ...]``."""


@dataclass
class TuningConfig:
    """What trains, and the learning rate that suits it (LM-BFF's default 1e-5 is for full tuning).

    A backend either marks some of the model's own parameters trainable (full, ln, bitfit) or adds
    parameters (soft prompt, prefixes, LoRA, adapters), which live under ``model.lmbff_tuning`` or in
    peft's layers so that ``named_parameters()`` names every trained tensor.
    """

    backend: ClassVar[str] = ""
    # The module with ``apply(config, model)`` (and, when the method needs them, ``prepare(config,
    # scorer)`` and ``export(config, model)``); imported on first use.
    implementation: ClassVar[str] = ""
    learning_rate: float = option(1e-5, help="AdamW learning rate for this backend", low=0, low_open=True)
    # Options whose default changed, with the value they had before (or that a config had before the
    # option existed): a saved config without the option was made with this value, not today's default.
    # Runs pin these options explicitly (``pin_changed_defaults``), and names leave out a legacy value, so
    # old and new runs of one configuration share a name and a folder and different ones never do.
    legacy_values: ClassVar[dict[str, Any]] = {}
    # The precision ``auto`` picks for a run that trains with this backend whatever the hardware, or None
    # (the hardware decides: bf16 where it is native). A trait of the backend, so no caller names one.
    auto_precision: ClassVar[str | None] = None

    def __post_init__(self):
        """Every option is checked where it is set (:mod:`lmbff.options`: its type, choices and bounds,
        declared once on its field), so the command line and the Python API say the same thing."""
        check_options(self, f"{self.backend or 'backend'} option")

    def _implementation(self):
        return importlib.import_module(self.implementation)

    def apply(self, model) -> ParamGroups:
        """Freeze what does not train, add what the method adds; return the parameter groups that train."""
        return self._implementation().apply(self, model)

    def prepare(self, scorer) -> None:
        """Adjust the scorer's encoder to the method (soft-prompt tuning reserves its virtual tokens)."""
        prepare = getattr(self._implementation(), "prepare", None)
        if prepare is not None:
            prepare(self, scorer)

    def export(self, model) -> TuningConfig:
        """After training: fold training-only reparameterisations into the parameters they produce and
        return the config that describes the saved state (the same config for most methods)."""
        export = getattr(self._implementation(), "export", None)
        return export(self, model) if export is not None else self

    def to_dict(self) -> dict:
        return {"backend": self.backend, **asdict(self)}


def register(cls: type[TuningConfig]) -> type[TuningConfig]:
    """Add a backend's config class to the registry under ``cls.backend``.

    Raises:
        ConfigError: the name is empty, taken by another class, or a former name (one backend would
            silently replace another).
    """
    name = cls.backend
    if not name or "+" in name:
        raise ConfigError(f"{cls.__name__}: a backend needs a name without '+', got {name!r}")
    if name in _RENAMED:
        raise ConfigError(f"{cls.__name__}: {name!r} is the former name of {_RENAMED[name]!r}")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ConfigError(
            f"backend {name!r} is registered twice: {_REGISTRY[name].__name__} and {cls.__name__}"
        )
    if not cls.implementation:
        raise ConfigError(f"{cls.__name__}: set implementation to the module that applies the method")
    _REGISTRY[name] = cls
    return cls


def _load_plugins() -> None:
    """Backends of installed packages (entry point group ``lmbff.backends``, :mod:`lmbff.plugins`)."""
    from ..plugins import BACKENDS, load_plugins

    load_plugins(BACKENDS, register, lambda cls: _REGISTRY.get(cls.backend) is cls)


def backend_names() -> list[str]:
    """Every registered backend, those of installed plugins included."""
    _load_plugins()
    return sorted(_REGISTRY)


def get_config_class(name: str) -> type[TuningConfig]:
    """The config class of a backend (a former name works, with a deprecation message).

    Raises:
        ConfigError: an unknown backend; the message lists the known ones.
    """
    if name in _RENAMED:
        warnings.warn(
            f"the tuning backend {name!r} is now called {_RENAMED[name]!r}", DeprecationWarning, stacklevel=3
        )
        name = _RENAMED[name]
    if name not in _REGISTRY:
        _load_plugins()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown tuning backend {name!r}; known: {', '.join(backend_names())}")
    return _REGISTRY[name]


@dataclass
class CombinedConfig(TuningConfig):
    """Several backends at once (``prefix+ln``, ``adapter+prefix+ln``: LN-tuning's unified framework,
    Qi et al. 2022): the union of what each trains, each part at its own learning rate (the
    combination's own ``learning_rate`` is the smallest of them, for display; ``--learning-rate``
    sets one rate for all parts)."""

    parts: list[TuningConfig] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "+".join(p.backend for p in self.parts)

    def apply(self, model) -> ParamGroups:
        for p in model.parameters():  # (common.freeze; not imported: common builds on this module)
            p.requires_grad_(False)
        groups: ParamGroups = []
        seen: set[int] = set()
        for part in self.parts:
            for g in _apply_keep(part, model):
                params = [p for p in g["params"] if id(p) not in seen]
                seen.update(map(id, params))
                if params:
                    groups.append({**g, "params": params})
        return groups

    def prepare(self, scorer) -> None:
        for part in self.parts:
            part.prepare(scorer)

    def export(self, model) -> TuningConfig:
        return CombinedConfig(learning_rate=self.learning_rate, parts=[p.export(model) for p in self.parts])

    def to_dict(self) -> dict:
        return {"backend": self.name, "parts": [p.to_dict() for p in self.parts]}


def _apply_keep(part: TuningConfig, model) -> ParamGroups:
    """Apply one part of a combination without undoing the parts applied before it: every backend
    freezes the whole model first, so the earlier parts' trainable flags are restored afterwards."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = part.apply(model)
    for p in trainable:
        p.requires_grad_(True)
    return groups


def make_config(name: str, options: dict[str, dict] | None = None, **overrides) -> TuningConfig:
    """The config of ``name`` (one backend or ``a+b+c``), with per-backend options such as
    ``{"prefix": {"length": 20}}``. Raises ConfigError for an unknown backend or option."""
    options = options or {}
    unknown = {_RENAMED.get(k, k) for k in options} - {_RENAMED.get(n, n) for n in name.split("+")}
    if unknown:
        raise ConfigError(f"options for {', '.join(sorted(unknown))}, which backend {name!r} does not use")

    def one(backend: str) -> TuningConfig:
        cls = get_config_class(backend)
        known = {f.name for f in fields(cls)}
        given = options.get(backend, {})
        bad = set(given) - known
        if bad:
            raise ConfigError(
                f"backend {backend!r} has no option {', '.join(sorted(bad))}; it has {sorted(known)}"
            )
        return cls(**given)

    for old in {n for n in (*name.split("+"), *options) if n in _RENAMED}:
        get_config_class(old)  # says that the name changed
    names = [_RENAMED.get(n, n) for n in name.split("+")]
    options = {_RENAMED.get(k, k): v for k, v in options.items()}
    if len(names) != len(set(names)):
        raise ConfigError(f"backend {name!r} names a method twice")
    if len(names) == 1:
        return one(names[0])
    return CombinedConfig(
        learning_rate=min(one(n).learning_rate for n in names), parts=[one(n) for n in names]
    )


def config_from_dict(data: dict) -> TuningConfig:
    """Rebuild a config saved by ``to_dict`` (a saved state's config.json); an option it lacks because
    it was saved before the option existed takes the value it was made with (``legacy_values``)."""
    if "parts" in data:
        return CombinedConfig(parts=[config_from_dict(p) for p in data["parts"]])
    cls = get_config_class(data["backend"])
    values = {**cls.legacy_values, **{k: v for k, v in data.items() if k != "backend"}}
    return cls(**values)


def auto_precision_of(name: str) -> str | None:
    """The precision ``auto`` picks for backend ``name`` (``a+b``: fp32 when any part asks for it), or
    None for the hardware to decide; None for a name no registry knows (it is refused elsewhere)."""
    wanted = set()
    for part in name.split("+"):
        try:
            wanted.add(get_config_class(part).auto_precision)
        except ConfigError:
            return None
    return "fp32" if "fp32" in wanted else None


def pin_changed_defaults(
    name: str, options: dict[str, dict] | None, *, legacy: bool = False
) -> dict[str, dict]:
    """``options`` of backend ``name`` with every option whose default changed set explicitly: to the
    value given, else to today's default (``legacy=False``: what a run made now uses) or to the value
    before the change (``legacy=True``: what a config saved without the option was made with).

    A run's config records these values so that its meaning never depends on the version that reads it.
    """
    pinned = {backend: dict(values) for backend, values in (options or {}).items()}
    for backend in name.split("+"):
        cls = get_config_class(backend)
        defaults = {f.name: f.default for f in fields(cls)}
        for name, old in cls.legacy_values.items():
            values = pinned.setdefault(cls.backend, {})
            values.setdefault(name, old if legacy else defaults[name])
    return pinned


def pinned_options(config: TuningConfig) -> dict[str, dict]:
    """The changed-default options of a config as ``backend_options`` name them (``{"full":
    {"embeddings": "frozen"}}``): what a saved state was trained with."""
    parts = config.parts if isinstance(config, CombinedConfig) else [config]
    return {
        p.backend: {option: getattr(p, option) for option in type(p).legacy_values}
        for p in parts
        if type(p).legacy_values
    }


def distinctive_options(options: dict[str, dict] | None) -> dict[str, dict]:
    """The options that name a run (its folder, its label in reports): all given but those equal to
    their value before a default changed, so that a run pinned to that value keeps the name that runs
    made before the change have."""
    named: dict[str, dict] = {}
    for backend, values in (options or {}).items():
        legacy = get_config_class(backend).legacy_values if backend in _REGISTRY else {}
        kept = {k: v for k, v in values.items() if k not in legacy or legacy[k] != v}
        if kept:
            named[backend] = kept
    return named
