"""The studio's files: task files from the template library (read-only) and the workspace (writable).

Every path a request names is resolved inside the workspace and refused otherwise, so a page cannot
read or write anything else. A save replaces one template of a task file and keeps the rest of the
file, comments included (ruamel.yaml's round-trip mode; PyYAML would drop comments). It is refused when
the file changed on disk since the page read it (the page is told and may save again on purpose), and
when the new file does not lint clean; it is written atomically under a lock file, so two servers on
one workspace cannot interleave a check and a write.
"""

from __future__ import annotations

import hashlib
import io
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedSeq
from ruamel.yaml.scalarstring import LiteralScalarString

from prompts.errors import LmbffError
from prompts.library import bundled_templates_dir, iter_task_files
from prompts.lint import LintIssue, lint_text

from ..files import atomic_write_text

_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.ya?ml$")
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
LIBRARY = "library"
WORKSPACE = "workspace"


class WorkspaceError(LmbffError, ValueError):
    """A request the workspace refuses; ``status`` is the HTTP status the server answers with."""

    def __init__(self, message: str, status: int = 400, **details):
        super().__init__(message)
        self.status = status
        self.details = details


def version_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class TaskFileRef:
    """A task file as the page names it: where it lives and its file name there."""

    source: str  # LIBRARY or WORKSPACE
    name: str  # file name, e.g. "SST-2.yaml"

    def to_dict(self) -> dict:
        return {"source": self.source, "name": self.name}


@dataclass(frozen=True)
class SaveResult:
    ref: TaskFileRef
    path: Path
    version: str
    issues: list[LintIssue]


class Workspace:
    """Task files the studio lists, reads and writes."""

    def __init__(self, root: str | Path, library: Path | None = None):
        self.root = Path(root).resolve()
        self.library = (library or bundled_templates_dir()).resolve()

    # ---- paths ----------------------------------------------------------------------------------
    def path_of(self, ref: TaskFileRef) -> Path:
        """The file a reference names, refused unless it is a plain YAML name inside its folder."""
        if ref.source not in (LIBRARY, WORKSPACE):
            raise WorkspaceError(f"source must be {LIBRARY!r} or {WORKSPACE!r}, got {ref.source!r}")
        if not _FILE_NAME.match(ref.name):
            raise WorkspaceError(
                f"file name {ref.name!r} refused: a plain name ending in .yaml (letters, digits, _ . -), "
                "no folders",
                status=403 if ("/" in ref.name or "\\" in ref.name or ".." in ref.name) else 400,
            )
        folder = self.library if ref.source == LIBRARY else self.root
        path = (folder / ref.name).resolve()
        if path.parent != folder:  # a symlink pointing out of the folder
            raise WorkspaceError(f"{ref.name!r} resolves outside the {ref.source}", status=403)
        return path

    # ---- listing and reading --------------------------------------------------------------------
    def task_files(self) -> list[dict]:
        """Every task file: the workspace's first, then the library's not shadowed by one of the same name."""
        listed: list[dict] = []
        seen: set[str] = set()
        for source, folder in ((WORKSPACE, self.root), (LIBRARY, self.library)):
            if not folder.is_dir():
                continue
            for path in iter_task_files([folder]):
                if path.resolve().parent != folder:
                    continue  # a symlink to elsewhere is not listed
                listed.append(
                    {"source": source, "name": path.name, "task": path.stem, "shadowed": path.stem in seen}
                )
                seen.add(path.stem)
        return listed

    def read(self, ref: TaskFileRef) -> tuple[str, str]:
        """The file's text and version (the page sends the version back when it saves)."""
        path = self.path_of(ref)
        if not path.is_file():
            raise WorkspaceError(f"no task file {ref.name!r} in the {ref.source}", status=404)
        data = path.read_bytes()
        return data.decode("utf-8"), version_of(data)

    # ---- saving ---------------------------------------------------------------------------------
    def save_template(
        self,
        origin: TaskFileRef,
        name: str,
        text: str,
        label_words: dict[str, list[str]],
        base_version: str | None,
        *,
        make_default: bool = False,
        tokenizer=None,
        kind: str = "masked",
    ) -> SaveResult:
        """Put one template into the workspace copy of ``origin`` (created from it if needed).

        ``base_version`` is the version of the file the page started from: the workspace file's when
        it has one, None when the page started from the library. A different version on disk is a
        conflict (409) and nothing is written.
        """
        if not _TEMPLATE_NAME.match(name):
            raise WorkspaceError(f"template name {name!r} refused: letters, digits, _ . - only")
        target = TaskFileRef(WORKSPACE, origin.name)
        path = self.path_of(target)
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked():
            on_disk = path.read_bytes() if path.is_file() else None
            current = version_of(on_disk) if on_disk is not None else None
            if current != base_version:
                raise WorkspaceError(
                    f"{path} changed on disk since the page read it"
                    if current is not None
                    else f"{path} was removed since the page read it",
                    status=409,
                    current_version=current,
                    current_text=on_disk.decode("utf-8") if on_disk is not None else None,
                )
            start = on_disk.decode("utf-8") if on_disk is not None else self.read(origin)[0]
            new_text = _with_template(start, name, text, label_words, make_default, str(path))
            issues, _ = lint_text(new_text, str(path), tokenizer, kind)  # type: ignore[arg-type]
            errors = [i for i in issues if i.severity == "error"]
            if errors:
                raise WorkspaceError(
                    f"not saved: the file would not lint clean ({len(errors)} errors)",
                    status=422,
                    issues=[str(i) for i in errors],
                )
            atomic_write_text(path, new_text)
        return SaveResult(target, path, version_of(new_text.encode("utf-8")), issues)

    @contextmanager
    def _locked(self):
        # filelock: the same exclusive lock on every platform (fcntl has none on Windows).
        with FileLock(self.root / ".studio.lock"):
            yield


def _round_trip_yaml() -> YAML:
    yaml = YAML()  # round-trip mode: comments, key order and quoting survive
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _flow_list(items: list[str]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()  # [good, fine] on one line, as the library writes word lists
    return seq


def _with_template(
    text: str, name: str, template: str, label_words: dict[str, list[str]], make_default: bool, file: str
) -> str:
    yaml = _round_trip_yaml()
    try:
        data = yaml.load(text)
    except Exception as exc:  # ruamel raises several unrelated classes for bad YAML
        raise WorkspaceError(f"{file}: cannot read the file to update it: {exc}", status=422) from None
    if not isinstance(data, dict) or not isinstance(data.get("templates"), dict):
        raise WorkspaceError(f"{file}: no 'templates' mapping to put the template in", status=422)
    words = {
        label: group[0] if len(group) == 1 else _flow_list(group) for label, group in label_words.items()
    }
    entry = data["templates"].get(name)
    if isinstance(entry, dict):  # keep its reference, description and comments
        entry["text"] = LiteralScalarString(template) if "\n" in template else template
        entry["label_words"] = words
    else:
        data["templates"][name] = {
            "text": LiteralScalarString(template) if "\n" in template else template,
            "label_words": words,
            "reference": "written in lmbff studio",
        }
    if make_default:
        data["default_template"] = name
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
