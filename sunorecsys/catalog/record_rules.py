"""The rules a raw Suno record must pass to become a song, written once as one DuckDB query.

Both readers (``fast_reader``: DuckDB's ``read_json`` straight over a catalogue file;
``tolerant_reader``: Python per record for files DuckDB refuses) hand the same raw columns to
:func:`rules_query`, so a record gets the same verdict whichever path its file took.

Every field ingest reads is taken as raw JSON (DuckDB type ``JSON``) and type-checked here, so a
wrong type is a rejection with a reason, never a silent conversion. The first failing rule names
the reason (codes in ``REASONS``):

``missing_id``: no ``id``, null or blank. ``unsafe_id``: an id that is not a string of 1-128
``[A-Za-z0-9_-]`` (``schema.SONG_ID_PATTERN``; ids become file names). ``bad_timestamp``:
``created_at`` missing, not an ISO 8601 string, or outside ``[EARLIEST_CREATED_AT, now + 1 day]``.
``negative_duration`` / ``bad_duration``: ``metadata.duration`` must be missing/null (kept as
NaN: Suno omits it on clips still rendering) or a finite number (or numeric string) in
``(0, MAX_DURATION_S]``. ``bad_count``: ``play_count``/``upvote_count``/``comment_count`` must be
missing/null (-> 0) or an integer in ``[0, MAX_COUNT]`` (a string, a boolean, a fraction, a
negative number, 1e19, a 5,000-digit integer are refused, not clamped). ``bad_field``:
``metadata`` that is not an object (DuckDB's reader refuses it: the tolerant reader says so before
any other rule), ``is_public`` that is not a boolean, a text field
(``title``, ``handle``, ``prompt``, ...) that is not a string, holds a NUL character or is longer
than ``MAX_TEXT_CHARS``. ``bad_tags``: ``metadata.tags`` not a string or a list of strings.
``too_deep`` (tolerant reader; a file nested that deep never reaches DuckDB): a record nested deeper
than ``MAX_DEPTH`` levels anywhere (the record itself is level 1).

Codes given outside this query: ``not_an_object``, ``malformed_json`` (a record or line that does not
parse, or damage between records such as a trailing comma), ``not_utf8``, ``duplicate_key`` (a field
ingest reads appears twice in a record or in its ``metadata``) by the tolerant reader; ``duplicate_superseded`` by ingest; ``bad_file`` (a whole file) by
``source_files``.

Normalisation (accepted records): tags split, trimmed, lower-cased and mapped to a genre by
``sunorecsys.catalog.genres`` (applied once per distinct tag value, in Python); ``handle`` falls
back to ``display_name``, ``model_version`` (``major_model_version``) to ``model_name``,
``prompt`` (lyrics) to ``gpt_description_prompt``, ``audio_path`` to ``metadata.audio_path``;
``is_remix`` is true when ``metadata.history`` or ``concat_history`` is non-empty.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from itertools import accumulate

from sunorecsys.catalog.schema import SONG_ID_PATTERN

# Suno's first public model (Bark) came out in April 2023 and the Suno app in December 2023: a
# clip "created" earlier is a broken or forged record. The upper end is now + 1 day (clock skew).
EARLIEST_CREATED_AT = datetime(2023, 1, 1, tzinfo=UTC)
# Suno renders clips of at most a few minutes (8 min for v4.5); songs extended clip by clip stay
# far below an hour. A larger claim (1e308 s) is a broken record, not a long song.
MAX_DURATION_S = 3600.0
# 1e11 plays is more than ten times the most-watched video ever; the sum over 10 M songs at this
# cap still fits int64, so no total downstream can overflow.
MAX_COUNT = 10 ** 11
# Suno's lyrics box takes a few thousand characters; 64 Ki characters per field leaves room for
# any real title/prompt/URL and keeps one hostile record from bloating every table it reaches.
MAX_TEXT_CHARS = 65_536
# The record object is level 1. Real Suno records are < 10 levels deep; Python's parser recurses
# (a RecursionError near 1,000 levels used to end the whole ingest).
MAX_DEPTH = 128

TOP_FIELDS = ("id", "title", "user_id", "handle", "display_name", "created_at", "audio_url", "audio_path",
              "model_name", "major_model_version", "play_count", "upvote_count", "comment_count", "is_public",
              "metadata")
META_FIELDS = ("tags", "prompt", "gpt_description_prompt", "duration", "history", "concat_history", "audio_path")
COUNT_FIELDS = ("play_count", "upvote_count", "comment_count")
TEXT_FIELDS = ("title", "user_id", "handle", "display_name", "model_name", "major_model_version",
               "audio_url", "audio_path", "m_prompt", "m_gpt_description_prompt", "m_audio_path")
POSITION_FIELD = "__position"  # only in the tolerant reader's re-written records

REASONS = ("not_an_object", "missing_id", "unsafe_id", "bad_timestamp", "bad_duration", "negative_duration",
           "bad_count", "bad_field", "bad_tags", "too_deep", "duplicate_key", "malformed_json", "not_utf8",
           "duplicate_superseded", "bad_file")

# read_json's ``columns``: every field as raw JSON, so DuckDB never converts (or refuses) a type;
# ``metadata`` as a struct of raw JSON fields, so its lyrics are parsed once, by the reader.
METADATA_TYPE = "STRUCT(" + ", ".join(f'"{f}" JSON' for f in META_FIELDS) + ")"
RAW_COLUMNS = {name: METADATA_TYPE if name == "metadata" else "JSON" for name in TOP_FIELDS}
RECORD_TYPE = "STRUCT(" + ", ".join(f'"{k}" {v}' for k, v in RAW_COLUMNS.items()) + ")"

_ISO_8601 = (r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?"
             r"(Z|z|[+-]\d{2}(:?\d{2})?)?$")
_DECIMAL = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"


def sql_text(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def _label(column: str) -> str:
    return "metadata." + column[2:] if column.startswith("m_") else column


ALL_FIELDS = (*TOP_FIELDS, *(f"m_{m}" for m in META_FIELDS))
STRING_VALUED = ("id", "created_at", *TEXT_FIELDS, "m_tags", "m_duration")


def _typed_columns() -> str:
    """Each read field's JSON text once: ``j_<f>`` (NULL when missing or null; DuckDB writes JSON
    without leading blanks, so the first character tells the type without parsing), ``s_<f>`` the
    string value of a JSON string, ``n_<f>`` the value of a JSON number."""
    cols = [f"nullif({f}::VARCHAR, 'null') AS j_{f}" for f in ALL_FIELDS if f != "metadata"]
    return ", ".join(cols)


def _decoded_columns() -> str:
    cols = [f"CASE WHEN starts_with(j_{f}, '\"') THEN {f}->>'$' END AS s_{f}" for f in STRING_VALUED]
    cols += [f"TRY_CAST(j_{f} AS DOUBLE) AS n_{f}" for f in (*COUNT_FIELDS, "m_duration")]
    return ", ".join(cols)


def _kind(field: str) -> str:
    """SQL: the JSON type of a field in words (for details)."""
    return (f"(CASE left(j_{field}, 1) WHEN '\"' THEN 'a string' WHEN '{{' THEN 'an object' WHEN '[' THEN 'a list' "
            f"WHEN 't' THEN 'a boolean' WHEN 'f' THEN 'a boolean' WHEN 'n' THEN 'null' ELSE 'a number' END)")


def _is_number(field: str) -> str:
    return f"(j_{field} IS NOT NULL AND left(j_{field}, 1) NOT IN ('\"', '{{', '[', 't', 'f'))"


def _text_problem(column: str) -> str:
    """SQL: NULL when ``column`` is a usable text value (or absent), else why not."""
    label, s = _label(column), f"s_{column}"
    return (f"CASE WHEN j_{column} IS NULL THEN NULL "
            f"WHEN {s} IS NULL THEN '{label} must be a string, found ' || {_kind(column)} "
            f"WHEN strlen({s}) > {MAX_TEXT_CHARS} AND length({s}) > {MAX_TEXT_CHARS} "
            f"THEN '{label} is longer than {MAX_TEXT_CHARS} characters' "
            f"WHEN contains({s}, chr(0)) THEN '{label} contains a NUL character' END")


def _text_ok(column: str) -> str:
    s = f"s_{column}"
    return (f"(j_{column} IS NULL OR ({s} IS NOT NULL AND strlen({s}) <= {MAX_TEXT_CHARS} "
            f"AND NOT contains({s}, chr(0))))")


def _count_problem(name: str) -> str:
    number, shown = f"n_{name}", f"left(j_{name}, 40)"
    return (f"CASE WHEN j_{name} IS NULL THEN NULL "
            f"WHEN NOT {_is_number(name)} THEN '{name} must be an integer, found ' || {_kind(name)} "
            f"WHEN {number} IS NULL OR NOT isfinite({number}) THEN '{name} ' || {shown} || ' is not a finite number' "
            f"WHEN {number} < 0 THEN '{name} ' || {shown} || ' is negative' "
            f"WHEN {number} <> floor({number}) THEN '{name} ' || {shown} || ' is not a whole number' "
            f"WHEN {number} > {MAX_COUNT} THEN '{name} ' || {shown} || ' is above {MAX_COUNT:.0e}' END")


def _count_ok(name: str) -> str:
    number = f"n_{name}"
    return (f"(j_{name} IS NULL OR ({number} IS NOT NULL AND {number} BETWEEN 0 AND {MAX_COUNT} "
            f"AND {number} = floor({number})))")


def _truthy(column: str) -> str:
    """Python truthiness of a JSON value (the old ``bool(history)``)."""
    j = f"j_{column}"
    return (f"(CASE WHEN {j} IS NULL THEN false WHEN {j} IN ('false', '\"\"', '[]', '{{}}') THEN false "
            f"WHEN {_is_number(column)} THEN coalesce(TRY_CAST({j} AS DOUBLE) <> 0, true) ELSE true END)")


def rules_query(source: str, latest_created_at: datetime) -> str:
    """The query turning ``source`` (a relation with RAW_COLUMNS, optionally POSITION_FIELD) into one
    row per record, in input order: ``reason``/``detail`` (NULL for an accepted record), the song
    columns (``tags_key``: the raw tag value for ``genres``) and, for rejected rows only, the raw fields (``raw_<field>``) for the rejected table."""
    latest = latest_created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
    earliest = EARLIEST_CREATED_AT.strftime("%Y-%m-%d %H:%M:%S+00")
    meta_cols = ", ".join(f"metadata.{f} AS m_{f}" for f in META_FIELDS)
    ts = (f"(CASE WHEN regexp_matches(s_created_at, {sql_text(_ISO_8601)}) "
          f"THEN TRY_CAST(s_created_at AS TIMESTAMPTZ) END)")
    dur = (f"(CASE WHEN {_is_number('m_duration')} THEN n_m_duration "
           f"WHEN regexp_matches(s_m_duration, {sql_text(_DECIMAL)}) THEN TRY_CAST(trim(s_m_duration) AS DOUBLE) END)")
    dur_shown = "left(j_m_duration, 40)"
    tag_types = "json_type(m_tags, '$[*]')"
    tags_ok = f"coalesce(list_bool_and(list_transform({tag_types}, lambda x: x IN ('VARCHAR', 'NULL'))), true)"
    all_fine = " AND ".join([
        "s_id IS NOT NULL", f"regexp_matches(s_id, {sql_text(SONG_ID_PATTERN.pattern)})",
        f"created BETWEEN TIMESTAMPTZ '{earliest}' AND TIMESTAMPTZ '{latest}'",
        f"(j_m_duration IS NULL OR (duration > 0 AND duration <= {MAX_DURATION_S}))",
        *(_count_ok(n) for n in COUNT_FIELDS),
        f"(j_m_tags IS NULL OR (s_m_tags IS NOT NULL AND strlen(s_m_tags) <= {MAX_TEXT_CHARS}))",
        *(_text_ok(c) for c in TEXT_FIELDS),
        "(j_is_public IS NULL OR j_is_public IN ('true', 'false'))",
    ])
    counts = " ".join(f"WHEN ({_count_problem(n)}) IS NOT NULL THEN ['bad_count', {_count_problem(n)}]"
                      for n in COUNT_FIELDS)
    texts = " ".join(f"WHEN ({_text_problem(c)}) IS NOT NULL THEN ['bad_field', {_text_problem(c)}]"
                     for c in TEXT_FIELDS)
    # The common case (every rule passes) is decided by one cheap conjunction; the CASE that names
    # the first failing rule runs only on the other rows.
    reason_detail = f"""
        CASE WHEN {all_fine} THEN NULL
          WHEN j_id IS NULL OR regexp_matches(s_id, '^\\s*$') THEN ['missing_id', 'the record has no "id"']
          WHEN s_id IS NULL OR NOT regexp_matches(s_id, {sql_text(SONG_ID_PATTERN.pattern)})
            THEN ['unsafe_id', 'a song id may only hold A-Z, a-z, 0-9, ''_'' and ''-'' (1-128 characters); '
                  || left(coalesce(s_id, j_id), 80) || ' is not used as a file name']
          WHEN j_created_at IS NULL THEN ['bad_timestamp', 'the record has no created_at']
          WHEN created IS NULL
            THEN ['bad_timestamp', 'created_at ' || left(j_created_at, 80) || ' is not an ISO 8601 timestamp']
          WHEN NOT (created BETWEEN TIMESTAMPTZ '{earliest}' AND TIMESTAMPTZ '{latest}')
            THEN ['bad_timestamp', 'created_at ' || left(j_created_at, 80)
                  || ' is outside {EARLIEST_CREATED_AT:%Y-%m-%d} .. now + 1 day (Suno did not exist before 2023)']
          WHEN j_m_duration IS NOT NULL AND duration IS NULL
            THEN ['bad_duration', 'metadata.duration ' || {dur_shown} || ' is not a number (' || {_kind('m_duration')} || ')']
          WHEN j_m_duration IS NOT NULL AND NOT isfinite(duration)
            THEN ['bad_duration', 'metadata.duration ' || {dur_shown} || ' is not a finite number']
          WHEN duration < 0 THEN ['negative_duration', 'metadata.duration is ' || {dur_shown} || ' seconds']
          WHEN duration = 0 THEN ['bad_duration', 'metadata.duration is 0 seconds']
          WHEN duration > {MAX_DURATION_S}
            THEN ['bad_duration', 'metadata.duration ' || {dur_shown} || ' s is above the {MAX_DURATION_S:.0f} s cap']
          {counts}
          WHEN j_m_tags IS NOT NULL AND s_m_tags IS NULL AND NOT starts_with(j_m_tags, '[')
            THEN ['bad_tags', 'metadata.tags must be a string or a list of strings, found ' || {_kind('m_tags')}]
          WHEN starts_with(j_m_tags, '[') AND NOT {tags_ok}
            THEN ['bad_tags', 'metadata.tags must be a string or a list of strings, found a list holding '
                  || array_to_string(list_distinct(list_filter({tag_types},
                                                               lambda x: x NOT IN ('VARCHAR', 'NULL'))), ', ')]
          WHEN strlen(j_m_tags) > {MAX_TEXT_CHARS} AND length(coalesce(s_m_tags, j_m_tags)) > {MAX_TEXT_CHARS}
            THEN ['bad_tags', 'metadata.tags is longer than {MAX_TEXT_CHARS} characters']
          {texts}
          WHEN NOT (j_is_public IS NULL OR j_is_public IN ('true', 'false'))
            THEN ['bad_field', 'is_public must be true, false or null, found ' || {_kind('is_public')}]
        END"""
    raw_cols = ", ".join(f"CASE WHEN rd IS NOT NULL THEN {'to_json(metadata)' if c == 'metadata' else c}::VARCHAR "
                         f"END AS raw_{c}" for c in TOP_FIELDS)
    position = POSITION_FIELD if POSITION_FIELD in source else "NULL::BIGINT"
    count_values = ", ".join(f"CASE WHEN rd IS NULL THEN coalesce(TRY_CAST(n_{n} AS BIGINT), 0) END AS {n}"
                             for n in COUNT_FIELDS)
    return f"""
    WITH src AS (SELECT {position} AS pos, {", ".join(TOP_FIELDS)} FROM {source}),
         fields AS (SELECT *, {meta_cols} FROM src),
         typed AS (SELECT *, {_typed_columns()} FROM fields),
         decoded AS (SELECT *, {_decoded_columns()} FROM typed),
         parsed AS (SELECT *, {ts} AS created, {dur} AS duration FROM decoded),
         judged AS (SELECT *, {reason_detail} AS rd FROM parsed)
    SELECT pos, rd[1] AS reason, rd[2] AS detail, coalesce(s_id, j_id) AS song_id,
           s_title AS title, s_user_id AS user_id,
           CASE WHEN coalesce(s_handle, '') <> '' THEN s_handle ELSE s_display_name END AS handle,
           created AS created_at,
           CASE WHEN rd IS NULL THEN duration END AS duration_s,
           CASE WHEN coalesce(s_major_model_version, '') <> '' THEN s_major_model_version ELSE s_model_name END
             AS model_version,
           CASE WHEN s_m_tags IS NOT NULL THEN 's' || s_m_tags WHEN starts_with(j_m_tags, '[') THEN 'a' || j_m_tags
           END AS tags_key,
           CASE WHEN coalesce(s_m_prompt, '') <> '' THEN s_m_prompt ELSE s_m_gpt_description_prompt END AS prompt,
           s_audio_url AS audio_url,
           CASE WHEN coalesce(s_audio_path, '') <> '' THEN s_audio_path ELSE s_m_audio_path END AS audio_path,
           {count_values},
           CASE WHEN j_is_public IN ('true', 'false') THEN j_is_public = 'true' END AS is_public,
           {_truthy("m_history")} OR {_truthy("m_concat_history")} AS is_remix,
           {raw_cols}
    FROM judged
    """


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """Nesting depth of a JSON text (``1`` for ``[]`` or ``{}``, 0 for a scalar), without recursion.

    Strings are skipped first, so brackets inside them do not count. Safe on any depth.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if not brackets:
        return 0
    return max(accumulate(1 if c in "[{" else -1 for c in brackets))


def may_be_too_deep(text: str) -> bool:
    """Cheap test: False when ``text`` cannot be nested more than MAX_DEPTH levels."""
    return len(text) > 2 * MAX_DEPTH and text.count("[") + text.count("{") > MAX_DEPTH


def latest_allowed_created_at(now: datetime | None = None) -> datetime:
    """The upper end of the created_at window: ``now`` + 1 day (UTC)."""
    from datetime import timedelta

    return (now or datetime.now(UTC)) + timedelta(days=1)
