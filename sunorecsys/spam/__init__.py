"""Spam and duplicate filter: duplicate audio (Chromaprint fingerprints + an inverted index),
near-duplicate text and keyword stuffing, mass uploads, bulk short tracks; flags with evidence,
an operator allow-list and a history of changes. No Dagster here."""
