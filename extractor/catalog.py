"""The issue catalog: categories and lifecycle phases, with definitions.

Everything downstream (training, prediction, discovery, review, reports) reads the
catalog through :func:`load_catalog`. The file is YAML, versioned with an integer that
every change bumps (:func:`add_category`), and validated on load.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from extractor.errors import InputError


@dataclass(frozen=True)
class Entry:
    """One catalog entry: an issue category or a lifecycle phase."""

    id: str
    name: str
    definition: str
    include: str = ""
    exclude: str = ""
    phases: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()  # things an interviewee might say, in the catalog authors' words
    dimension: str = ""
    added_from: str = ""

    def describe(self) -> str:
        """The text a turn is compared with: name, definition, what counts, keywords."""
        parts = [f"{self.name}.", self.definition]
        if self.include:
            parts.append(self.include)
        if self.keywords:
            parts.append("Keywords: " + ", ".join(self.keywords) + ".")
        return " ".join(p.strip() for p in parts if p.strip())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("phases", "keywords", "codes", "examples"):
            d[k] = list(d[k])
        return {k: v for k, v in d.items() if v not in ("", [], ())}


@dataclass(frozen=True)
class Catalog:
    version: int
    categories: tuple[Entry, ...]
    phases: tuple[Entry, ...]
    name: str = "qi-catalog"
    path: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def category_ids(self) -> list[str]:
        return [e.id for e in self.categories]

    @property
    def phase_ids(self) -> list[str]:
        return [e.id for e in self.phases]

    @property
    def tag(self) -> str:
        """Versioned name, e.g. ``qi-catalog@1``, recorded with every model and prediction."""
        return f"{self.name}@{self.version}"

    def __getitem__(self, entry_id: str) -> Entry:
        for e in (*self.categories, *self.phases):
            if e.id == entry_id:
                return e
        raise KeyError(entry_id)

    def __contains__(self, entry_id: object) -> bool:
        return any(e.id == entry_id for e in (*self.categories, *self.phases))

    def fingerprint(self) -> str:
        """Hash of the entries (not of formatting): changes when any definition changes."""
        blob = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            **dict(self.extra),
            "phases": [e.to_dict() for e in self.phases],
            "categories": [e.to_dict() for e in self.categories],
        }


def default_catalog_path() -> Path:
    """The catalog shipped in the package, ``extractor/data/catalog.yaml`` (read-only; a saved
    model carries its own copy)."""
    from extractor.resources import packaged_catalog

    return packaged_catalog()


_LIST_FIELDS = ("phases", "keywords", "codes", "examples")
_SCALARS = (str, int, float)


def _entry(raw: Any, where: str, path: Path) -> Entry:
    if not isinstance(raw, Mapping):
        raise InputError(path, f"a mapping for {where}", type(raw).__name__)
    for key in ("id", "name", "definition"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise InputError(path, f'a non-empty string "{key}" in {where}', repr(raw.get(key))[:80])
    known = set(Entry.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise InputError(path, f"only the fields {sorted(known)} in {where}", f"{sorted(unknown)}"[:120])
    kw = {}
    for key in _LIST_FIELDS:
        value = raw.get(key)
        value = [] if value is None else value  # `keywords:` left empty
        if not isinstance(value, list) or not all(isinstance(v, _SCALARS) and not isinstance(v, bool) for v in value):
            raise InputError(path, f'a list for "{key}" in {where} (of text items)', repr(value)[:80])
        kw[key] = tuple(str(v) for v in value)
    for key, value in raw.items():
        if key not in kw and value is not None and (not isinstance(value, _SCALARS) or isinstance(value, bool)):
            raise InputError(path, f'text for "{key}" in {where}', f"{type(value).__name__} {value!r}"[:80])
    # An empty YAML field (`exclude:`) is None: keep it empty rather than the text "None".
    fields: dict[str, Any] = {**{k: "" if v is None else str(v) for k, v in raw.items() if k not in kw}, **kw}
    return Entry(**fields)


def _entries(raw: Mapping[str, Any], key: str, path: Path) -> tuple[Entry, ...]:
    items = raw.get(key) or []
    if not isinstance(items, list):
        raise InputError(path, f'a list of entries for "{key}"', f"{type(items).__name__} {items!r}"[:80])
    return tuple(_entry(r, f"{key}[{i}]", path) for i, r in enumerate(items))


MAX_CATALOG_BYTES = 16 * 2**20
_MAX_DIGITS = 30


def _yaml_type(value: Any) -> str:
    return {type(None): "null", bool: "boolean", int: "number", float: "number"}.get(type(value),
                                                                                  type(value).__name__)


def _int_or_text(path: Path, node: Any, construct: Any) -> int | str:
    text = str(node.value)
    if ":" in text:  # YAML 1.1 base 60 ("1:30" is 90): keep the text written
        return text
    digits = len(text.lstrip("+-").replace("_", ""))
    if digits > _MAX_DIGITS:  # Python refuses > 4,300 digits with a ValueError
        raise InputError(path, f"numbers of at most {_MAX_DIGITS} digits", f"one of {digits}",
                         line=node.start_mark.line + 1)
    return construct(node)


def _finite(path: Path, node: Any, value: float) -> float:
    if not math.isfinite(value):
        raise InputError(path, "finite numbers", str(node.value)[:40], line=node.start_mark.line + 1)
    return value


def _unicode(path: Path, node: Any, value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # "\ud800" in a double-quoted scalar
        raise InputError(path, "text without lone surrogates", f"\\u{ord(value[e.start]):04x}",
                         line=node.start_mark.line + 1) from None
    return value


def _strict_loader(path: Path):
    """A PyYAML SafeLoader that refuses duplicate keys and aliases.

    Aliases (``*name``) are refused outright: a catalog has no use for them, and nested
    aliases ("billion laughs") expand into gigabytes in whatever walks the data later.
    """
    import yaml

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent, index):  # noqa: ANN001
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark
                raise InputError(path, "a catalog without YAML aliases (*name)", "an alias", line=mark.line + 1,
                                 hint="write the value out; aliases can expand without bound")
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):  # noqa: ANN001
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if not isinstance(key, str):  # `1:`, `~:`, `yes:`, `[a]:` - quote it if it is meant as text
                    raise InputError(path, "text mapping keys", (f"a {_yaml_type(key)} key {key!r}" if key is not None else "a null key (~)")[:80], line=line,
                                     hint="quote the key")
                if key in seen:
                    raise InputError(path, "each key once in a mapping", f"{key!r} again (also line {seen[key]})",
                                     line=line)
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

        def construct_yaml_int(self, node):  # noqa: ANN001
            return _int_or_text(path, node, super().construct_yaml_int)

        def construct_yaml_float(self, node):  # noqa: ANN001
            return _finite(path, node, super().construct_yaml_float(node))

        def construct_yaml_str(self, node):  # noqa: ANN001
            return _unicode(path, node, super().construct_yaml_str(node))

        def refuse(self, node):  # noqa: ANN001
            raise InputError(path, "plain YAML values (text, numbers, lists, mappings)",
                             f"a {node.tag.rsplit(':', 1)[-1]} value", line=node.start_mark.line + 1)

    # Dates stay the text they were written as; binary, sets and ordered pairs have no place in a catalog.
    Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_str)
    for tag, method in (("int", Loader.construct_yaml_int), ("float", Loader.construct_yaml_float),
                        ("str", Loader.construct_yaml_str)):
        Loader.add_constructor(f"tag:yaml.org,2002:{tag}", method)
    for tag in ("binary", "set", "omap", "pairs"):
        Loader.add_constructor(f"tag:yaml.org,2002:{tag}", Loader.refuse)
    return Loader


def parse_catalog_yaml(text: str, path: str | Path) -> Any:
    """YAML text -> data, refusing duplicate keys and aliases; YAML errors as ``file:line``."""
    import yaml

    path = Path(path)
    try:
        return yaml.load(text, Loader=_strict_loader(path))  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(path, "valid YAML", getattr(e, "problem", None) or str(e),
                         line=mark.line + 1 if mark else None) from None
    except RecursionError:
        raise InputError(path, "YAML nested at most a few hundred levels deep", "deeper nesting") from None


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a catalog YAML file (default: :func:`default_catalog_path`)."""
    from extractor.safeio import read_capped

    path = Path(path) if path else default_catalog_path()
    if not path.exists():
        raise InputError(path, "a catalog YAML file", "no such file")
    data = read_capped(path, MAX_CATALOG_BYTES, what="a catalog YAML file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(path, "UTF-8 text", f"undecodable byte 0x{data[e.start]:02x} at offset {e.start}") from None
    raw = parse_catalog_yaml(text, path)
    if not isinstance(raw, Mapping):
        raise InputError(path, "a mapping with version, phases and categories", type(raw).__name__)
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(path, 'an integer "version" >= 1', repr(version))
    phases, cats = _entries(raw, "phases", path), _entries(raw, "categories", path)
    if not cats or not phases:
        raise InputError(path, "at least one category and one phase", f"{len(cats)} categories, {len(phases)} phases")
    seen: set[str] = set()
    for entry in (*phases, *cats):
        if entry.id in seen:
            raise InputError(path, "unique entry ids", f"{entry.id!r} twice")
        seen.add(entry.id)
    phase_ids = {p.id for p in phases}
    for entry in cats:
        bad = [p for p in entry.phases if p not in phase_ids]
        if bad:
            raise InputError(path, f"phases of {entry.id!r} among {sorted(phase_ids)}", repr(bad))
    extra = {k: v for k, v in raw.items() if k not in ("version", "name", "phases", "categories")}
    return Catalog(version=version, categories=cats, phases=phases, name=str(raw.get("name") or "qi-catalog"),
                   path=str(path), extra=extra)


def save_catalog(catalog: Catalog, path: str | Path, *, snapshot: bool = False) -> None:
    """Atomically write ``catalog`` as new YAML, never into the installed package (comments of
    an existing file are not kept: to change a hand-edited catalog use :func:`add_entries`).
    ``snapshot``: the frozen copy a model directory carries, which nobody edits (so it may be
    written wherever the model is, e.g. when ``make train`` refreshes the packaged model)."""
    import yaml

    from extractor.jsonl import atomic_open
    from extractor.resources import refuse_packaged

    if not snapshot:
        refuse_packaged(path, "catalog")
    with atomic_open(path) as fh:
        yaml.safe_dump(catalog.to_dict(), fh, sort_keys=False, allow_unicode=True, width=100)


def add_category(path: str | Path, entry: Entry) -> Catalog:
    """Append a category to the catalog file, bump its version, write atomically.

    The file is edited round-trip (``ruamel.yaml``): comments, key order, quoting and the
    other entries stay as the user wrote them. See :func:`add_entries`.
    """
    return add_entries(path, [entry])


def add_entries(path: str | Path, entries: Iterable[Entry], *, kind: str = "categories") -> Catalog:
    """Append ``entries`` (categories, or phases with ``kind="phases"``) to the catalog YAML at
    ``path`` and bump ``version`` once, keeping the file's comments and layout.

    The result is validated (by :func:`load_catalog` on the new text) before it replaces the
    file, under the file's writer lock, so a bad entry or a concurrent edit never leaves an
    unloadable or half-merged catalog. Returns the new catalog.
    """
    import io

    from ruamel.yaml import YAML

    from extractor.jsonl import atomic_open
    from extractor.resources import refuse_packaged
    from extractor.safeio import locked

    if kind not in ("categories", "phases"):
        raise ValueError(f"kind must be categories or phases, not {kind!r}")
    path = Path(path)
    refuse_packaged(path, "catalog")  # before the lock: no lock file in the install directory either
    entries = list(entries)
    with locked(path):
        catalog = load_catalog(path)  # re-read under the lock: validates, refuses aliases/duplicates
        ids = set(catalog.category_ids) | set(catalog.phase_ids)
        phase_ids = set(catalog.phase_ids) | ({e.id for e in entries} if kind == "phases" else set())
        for entry in entries:
            if entry.id in ids:
                raise InputError(path, "a new entry id", f"{entry.id!r} already in the catalog")
            ids.add(entry.id)
            # Validate before writing: a bad entry must not leave an unloadable catalog on disk.
            _entry(entry.to_dict(), f"the new entry {entry.id!r}", path)
            bad = [p for p in entry.phases if p not in phase_ids]
            if bad:
                raise InputError(path, f"phases of {entry.id!r} among {sorted(phase_ids)}", repr(bad))
        yaml = YAML()  # round-trip
        yaml.preserve_quotes = True
        yaml.width = 100
        doc = yaml.load(path.read_text(encoding="utf-8-sig"))
        if doc.get(kind) is None:
            doc[kind] = []
        for entry in entries:
            doc[kind].append(entry.to_dict())
        doc["version"] = catalog.version + 1
        buf = io.StringIO()
        yaml.dump(doc, buf)
        text = buf.getvalue()
        parse_catalog_yaml(text, path)  # what we write must load
        with atomic_open(path) as fh:
            fh.write(text)
    return load_catalog(path)


def resolve_catalog(named: Catalog | str | Path | None = None, model: Catalog | None = None) -> Catalog:
    """The catalog a command uses: the one the user named, else the model's, else the packaged one.

    The one resolver of every command (``catalog or load_catalog()`` scattered at call sites
    once made ``review export`` build tasks from the packaged catalog, not the model's).
    """
    if isinstance(named, Catalog):
        return named
    if named:
        return load_catalog(named)
    return model if model is not None else load_catalog()
