"""Turn a Music Flamingo reply into the guide's five scores, or say plainly that it could not.

Replies seen in practice: JSON as asked, JSON in a Markdown code fence, JSON with prose around it,
Python-style dicts (single quotes, True/None), trailing commas, scores on 0–10 or 0–100 scales or as
percentages, missing keys, JSON cut off by the token limit, and plain prose
("Production quality: 8/10"). Each reply gets a status: ``ok`` (all five dimensions), ``partial``
(some), ``failed`` (none). A failure never becomes a default score.

Scales: a value with an explicit scale ("8/10", "85%", "7 out of 10") is divided by it. Bare
numbers: when every bare score in a reply is a whole number and one exceeds 1, the reply is read as
0–10 (or 0–100 if one exceeds 10) throughout, so a "1" there means 0.1; otherwise each bare number
is read on its own (<= 1 as is, <= 10 as tenths, <= 100 as hundredths). Values outside [0, 1]
after scaling, negatives, NaN and booleans are dropped and reported in ``notes``.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from sunorecsys.quality.dimensions import DESCRIPTIVE_FIELDS, DIMENSIONS, get_overall_quality_score

# Bump whenever a reply could parse differently: it is part of the scorer version.
PARSER_VERSION = "1"

# Accepted spellings of each dimension, after key normalisation (lower case, non-alphanumerics -> "_").
_ALIASES: dict[str, tuple[str, ...]] = {
    "content_usefulness": ("content_usefulness", "usefulness"),
    "production_quality": ("production_quality", "quality_of_production"),
    "content_enjoyment": ("content_enjoyment", "enjoyment"),
    "production_complexity": ("production_complexity", "complexity"),
    "overall_recommendation_score": ("overall_recommendation_score", "overall_recommendation",
                                     "recommendation_score", "recommendation"),
}
_KEY_TO_DIM = {}
for _dim, _names in _ALIASES.items():
    for _name in _names:
        _KEY_TO_DIM[_name] = _dim
        _KEY_TO_DIM[_name + "_score"] = _dim

# Prose labels: words may be separated by spaces, underscores or hyphens ("Production-Quality").
_SEP = r"[\s_\-]*"
_PROSE_LABELS: dict[str, str] = {
    "content_usefulness": rf"content{_SEP}usefulness",
    "production_quality": rf"production{_SEP}quality",
    "content_enjoyment": rf"content{_SEP}enjoyment",
    "production_complexity": rf"production{_SEP}complexity",
    "overall_recommendation_score": rf"(?:overall{_SEP})?recommendation(?:{_SEP}score)?",
}
# Between a label and its number only punctuation/space (quotes, "**", ":", "=", "-"), so an echoed
# prompt line ("Production Quality: Technical production quality? (0.0 to 1.0)") is not a score.
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SCALE = r"(\s*(?:%|/\s*\d+(?:\.\d+)?|out\s+of\s+\d+(?:\.\d+)?))?"
_PROSE_PATTERNS = {dim: re.compile(rf"\b{label}\b[\"'*\s:=\-–]{{0,8}}{_NUMBER}{_SCALE}", re.IGNORECASE)
                   for dim, label in _PROSE_LABELS.items()}
_FIELD_PATTERNS = {f: re.compile(rf"^[\s\-*#\d.\"']*{f.replace('_', _SEP)}[\"'*\s]*[:\-–][\"'*\s]*(.+?)[\"'*\s,]*$",
                                 re.IGNORECASE | re.MULTILINE) for f in DESCRIPTIVE_FIELDS}
_FENCE = re.compile(r"```(?:json|JSON|python)?\s*\n?(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_STRING_SCALE = re.compile(rf"^\s*{_NUMBER}{_SCALE}\s*$", re.IGNORECASE)


@dataclass
class ParsedResponse:
    """What a reply said. ``scores``: dimension -> [0, 1]; ``fields``: descriptive text fields;
    ``missing``: dimensions not found; ``overall_quality_score``: guide weights renormalised over the
    dimensions present (None when failed); ``source``: 'json', 'prose' or None; ``notes``: what was
    dropped or repaired, for the record.
    """

    status: str
    scores: dict[str, float] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    overall_quality_score: float | None = None
    source: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        if self.status == "ok":
            return None
        if self.status == "partial":
            return "missing dimensions: " + ", ".join(self.missing)
        return "no quality scores found in the reply" + (f" ({'; '.join(self.notes)})" if self.notes else "")


def _norm_key(key: object) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(key).strip().lower()).strip("_")


def _balanced_objects(text: str) -> list[str]:
    """Every top-level ``{...}`` span, honouring quoted strings (either quote) and escapes."""
    spans, depth, start, quote, escape = [], 0, -1, None, False
    for i, ch in enumerate(text):
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote or (ch == "\n" and quote == "'"):
                quote = None
            continue
        if ch == '"' or (ch == "'" and depth > 0 and i > 0 and not text[i - 1].isalnum()):
            quote = ch
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start:i + 1])
    return spans


def _load_lenient(candidate: str) -> Any:
    """JSON, then JSON without trailing commas, then a Python literal (single quotes, True/None)."""
    for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
        try:
            return json.loads(attempt)
        except json.JSONDecodeError:
            pass
    pythonish = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", re.sub(r"\bnull\b", "None", candidate)))
    try:
        return ast.literal_eval(pythonish)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None


def _flatten(obj: dict, out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keys of nested dicts lifted to the top (``{"scores": {...}}``), first occurrence wins."""
    out = {} if out is None else out
    for key, value in obj.items():
        nk = _norm_key(key)
        if isinstance(value, dict) and not ({"score", "value"} & {_norm_key(k) for k in value}):
            _flatten(value, out)
        else:
            out.setdefault(nk, value)
    return out


class _Value:
    """A score as found: number plus its explicit scale (None for a bare number)."""

    def __init__(self, number: float, scale: float | None) -> None:
        self.number, self.scale = number, scale


def _scale_of(suffix: str | None) -> float | None:
    if not suffix:
        return None
    s = suffix.strip().lower()
    if s == "%":
        return 100.0
    digits = re.search(r"\d+(?:\.\d+)?", s)
    return float(digits.group()) if digits else None


def _as_value(raw: Any) -> _Value | str | None:
    """A _Value, or a string saying why the value is unusable, or None if absent."""
    if raw is None:
        return None
    if isinstance(raw, dict):
        for k, v in raw.items():
            if _norm_key(k) in ("score", "value"):
                return _as_value(v)
        return "a mapping without a score"
    if isinstance(raw, bool):
        return f"boolean {raw}"
    if isinstance(raw, (int, float)):
        return _Value(float(raw), None)
    if isinstance(raw, str):
        m = _STRING_SCALE.match(raw)
        if m:
            return _Value(float(m.group(1)), _scale_of(m.group(2)))
        return f"text {raw[:40]!r}"
    return f"a {type(raw).__name__}"


def _resolve_scales(found: dict[str, _Value], notes: list[str]) -> dict[str, float]:
    bare = [v.number for v in found.values() if v.scale is None]
    shared_scale = None
    if bare and all(float(n).is_integer() for n in bare) and max(bare) > 1:
        shared_scale = 100.0 if max(bare) > 10 else 10.0
    scores: dict[str, float] = {}
    for dim, v in found.items():
        n = v.number
        if not math.isfinite(n) or n < 0:
            notes.append(f"{dim}: unusable value {n}")
            continue
        scale = v.scale or shared_scale
        if scale is None:
            scale = 1.0 if n <= 1 else 10.0 if n <= 10 else 100.0 if n <= 100 else None
        if not scale or scale <= 0 or n / scale > 1:
            notes.append(f"{dim}: value {n} outside its scale")
            continue
        scores[dim] = round(n / scale, 6)
    return scores


def _text_field(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value if v is not None)
    text = str(value).strip()
    return text or None


def _from_mapping(obj: dict, notes: list[str]) -> tuple[dict[str, _Value], dict[str, str]]:
    flat = _flatten(obj)
    found: dict[str, _Value] = {}
    for key, raw in flat.items():
        dim = _KEY_TO_DIM.get(key)
        if dim is None or dim in found:
            continue
        value = _as_value(raw)
        if isinstance(value, _Value):
            found[dim] = value
        elif isinstance(value, str):
            notes.append(f"{dim}: {value}")
    fields = {f: t for f in DESCRIPTIVE_FIELDS if (t := _text_field(flat.get(f))) is not None}
    return found, fields


def _from_prose(text: str) -> tuple[dict[str, _Value], dict[str, str]]:
    found: dict[str, _Value] = {}
    for dim, pattern in _PROSE_PATTERNS.items():
        m = pattern.search(text)
        if m:
            found[dim] = _Value(float(m.group(1)), _scale_of(m.group(2)))
    fields = {}
    for f, pattern in _FIELD_PATTERNS.items():
        m = pattern.search(text)
        if m and m.group(1).strip():
            fields[f] = m.group(1).strip()
    return found, fields


def parse_quality_response(text: str | None) -> ParsedResponse:
    """Parse one model reply (see module docstring for what is accepted and how scales are read)."""
    if not text or not text.strip():
        return ParsedResponse(status="failed", missing=list(DIMENSIONS), notes=["empty reply"])
    notes: list[str] = []
    best: tuple[dict[str, _Value], dict[str, str]] | None = None
    echoes: list[str] = []
    all_fields: dict[str, str] = {}
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + _balanced_objects(text)
    for candidate in candidates:
        for span in [candidate, *(_balanced_objects(candidate) if candidate.lstrip()[:1] != "{" else [])]:
            obj = _load_lenient(span.strip())
            if isinstance(obj, dict):
                found, fields = _from_mapping(obj, notes)
                if fields and all(v.lower() == "string" for v in fields.values()):
                    # The prompt's own template echoed back ("genre": "string", scores 0.0): no answer.
                    notes.append("reply echoes the prompt's JSON template")
                    echoes.append(span)
                    continue
                for name, value in fields.items():
                    all_fields.setdefault(name, value)
                if best is None or len(found) > len(best[0]):
                    best = (found, fields)
    source = "json" if best and best[0] else None
    found, fields = (best[0] if best else {}), dict(all_fields)
    if not found:
        # Cut-off JSON or plain prose: look for "label: number" pairs anywhere in the reply.
        prose_text = text
        for span in echoes:
            prose_text = prose_text.replace(span, " ")
        found, prose_fields = _from_prose(prose_text)
        source = "prose" if found else None
        fields = {**prose_fields, **fields}
    scores = _resolve_scales(found, notes)
    notes = list(dict.fromkeys(notes))  # fenced JSON is also seen as a bare object: say things once
    missing = [d for d in DIMENSIONS if d not in scores]
    status = "ok" if not missing else "partial" if scores else "failed"
    return ParsedResponse(status=status, scores={d: scores[d] for d in DIMENSIONS if d in scores},
                          fields=fields, missing=missing,
                          overall_quality_score=get_overall_quality_score(scores) if scores else None,
                          source=source if scores else None, notes=notes)
