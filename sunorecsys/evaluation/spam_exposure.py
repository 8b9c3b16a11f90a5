"""How many flagged (spam) songs the recommender would have shown without the spam policy."""

from __future__ import annotations

import numpy as np

from sunorecsys.recommenders.batch import recommend_seeds


def spam_exposure(model, seed_song_ids: list[str] | None = None, user_ids: list[str] | None = None,
                  k: int = 10) -> dict:
    """Run the fitted ``model`` with ``spam_policy="keep"`` for each seed song and listener, and count
    the flagged songs in the top-``k`` lists (what the filter removes).

    Returns ``{"lists", "recommendations", "flagged_recommendations", "flagged_songs", "share"}``:
    lists asked for, recommendations shown, of them flagged, distinct flagged songs, and the share.
    """
    flagged = getattr(model, "spam_flagged_", None)
    if flagged is None:
        flagged = np.zeros(len(model.songs_.ids), bool)
    unfiltered = model.with_settings(spam_policy="keep")
    ids = model.songs_.ids.astype(str)
    is_flagged = dict(zip(ids, flagged))
    seeds = [str(s) for s in (seed_song_ids or [])]
    users = list(user_ids or [])
    # seed queries in blocks (the same lists as one recommend() each); listeners one by one
    shown = recommend_seeds(unfiltered, seeds, k)["song_id"].tolist() if seeds else []
    for user in users:
        shown += [r["song_id"] for r in unfiltered.recommend(n=k, user_id=user)]
    hits = [s for s in shown if is_flagged.get(s, False)]
    return {"lists": len(seeds) + len(users), "recommendations": len(shown), "flagged_recommendations": len(hits),
            "flagged_songs": len(set(hits)), "share": round(len(hits) / len(shown), 4) if shown else 0.0}
