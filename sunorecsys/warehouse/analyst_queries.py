"""Five analyst questions as SQL over the warehouse views (shown in the README, tested, benchmarked).

Each is plain DuckDB SQL over the views ``quality_scores``, ``audio_checks`` and ``flamingo_scores``,
so it runs unchanged through ``sunorecsys sql``, the DuckDB CLI on ``data/warehouse.duckdb``, or
``duckdb.connect(...)``. The daily score tables carry the song context (genre, creator, counts at
scoring time: ``sunorecsys.catalog.song_context``), so none of these needs a join with ``songs``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnalystQuery:
    name: str
    question: str
    sql: str


ANALYST_QUERIES: tuple[AnalystQuery, ...] = (
    AnalystQuery(
        "daily_quality_by_genre",
        "Daily mean blended quality per genre, and the share of songs below the guide's 0.4 threshold.",
        """\
SELECT date AS day,
       coalesce(genre, '(none)') AS genre,
       count(*) AS songs,
       avg(quality_score) AS mean_quality,
       avg((quality_score < 0.4)::INT) AS share_below_0_4
FROM quality_scores
WHERE quality_score IS NOT NULL
GROUP BY ALL
ORDER BY day, genre""",
    ),
    AnalystQuery(
        "worst_creators_by_failed_audio",
        "Creators (with at least 5 checked songs) whose uploads most often fail the audio checks.",
        """\
SELECT user_id AS creator,
       max(handle) AS handle,
       count(*) AS songs_checked,
       count(*) FILTER (WHERE hard_fail OR status <> 'ok') AS failed,
       count(*) FILTER (WHERE hard_fail OR status <> 'ok') / count(*) AS failed_share
FROM audio_checks
GROUP BY user_id
HAVING count(*) >= 5
ORDER BY failed_share DESC, songs_checked DESC, creator
LIMIT 20""",
    ),
    AnalystQuery(
        "score_drift_by_scorer_version",
        "How Music Flamingo scores moved between scorer versions (model + prompt + parser): songs, "
        "days covered, mean and median score, and the change in mean from the previous version.",
        """\
WITH per_version AS (
    SELECT scorer_version,
           count(*) AS songs,
           min(date) AS first_day,
           max(date) AS last_day,
           avg(overall_quality_score) AS mean_score,
           median(overall_quality_score) AS median_score
    FROM flamingo_scores
    WHERE overall_quality_score IS NOT NULL
    GROUP BY scorer_version
)
SELECT *,
       mean_score - lag(mean_score) OVER (ORDER BY first_day, scorer_version) AS drift_from_previous
FROM per_version
ORDER BY first_day, scorer_version""",
    ),
    AnalystQuery(
        "quality_vs_plays",
        "Do better-scored songs get played more? Play counts per quality band of width 0.1.",
        """\
SELECT least(floor(quality_score * 10), 9) / 10 AS quality_band,
       count(*) AS songs,
       avg(play_count) AS mean_plays,
       median(play_count) AS median_plays
FROM quality_scores
WHERE quality_score IS NOT NULL
GROUP BY quality_band
ORDER BY quality_band""",
    ),
    AnalystQuery(
        "parse_failure_rate_by_day",
        "Per day, how often Music Flamingo answered but its answer could not be fully parsed "
        "(status 'partial': some dimensions missing; 'failed' with a raw response: unparseable).",
        """\
SELECT date AS day,
       count(*) AS scored,
       count(raw_response) AS answered,
       count(*) FILTER (WHERE status = 'partial') AS partial,
       count(*) FILTER (WHERE status = 'failed' AND raw_response IS NOT NULL) AS unparseable,
       count(*) FILTER (WHERE status <> 'ok' AND raw_response IS NOT NULL) / nullif(count(raw_response), 0)
           AS parse_failure_rate
FROM flamingo_scores
GROUP BY day
ORDER BY day""",
    ),
)

QUERIES_BY_NAME: dict[str, AnalystQuery] = {q.name: q for q in ANALYST_QUERIES}
