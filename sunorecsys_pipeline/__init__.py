"""The Dagster code location of sunorecsys: thin assets over the ``sunorecsys`` library.

Layout (after dagster-io's ``project_ml``): ``assets/`` by concept (catalog, quality, recommender,
analyst), then ``checks.py``, ``jobs.py``, ``resources.py``, ``schedules.py``, ``sensors.py`` beside
them; ``definitions.py`` assembles the code location.
"""
