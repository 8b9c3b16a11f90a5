"""Simulated nights through a real Dagster deployment (tests/test_soak_nights.py, bench/soak.py).

What is real: a Dagster instance in its own DAGSTER_HOME (the repo's deploy/dagster.yaml: queued
runs, one warehouse writer at a time, run retries), a ``dagster-daemon run`` process that dequeues
and launches the runs (in the code server it starts), evaluates the catalogue sensor on new files
and retries crashed runs; the code location loaded from workspace.yaml; audio served over HTTP by
local servers on 127.0.0.1 (which refuse, stall or serve); real decoding and signal checks.

What is simulated: time. The daemon's scheduler fires at wall-clock 02:00 only, so for each
simulated night the driver does what the scheduler daemon does for one tick: it evaluates the
schedule in the code server for that night's time (``get_schedule_execution_data``) and submits
the run request with the scheduler's own function (``_submit_run_request``: the run is created and
queued exactly as a tick would). The daemon then dequeues and runs it.
"""

from __future__ import annotations

import datetime as dt
import http.server
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
import soundfile as sf
import yaml

REPO = Path(__file__).resolve().parents[1]
FILES_TAG = "sunorecsys/catalogue_files"


# --- audio hosts ---------------------------------------------------------------------------

class AudioHost:
    """An HTTP server on 127.0.0.1:<port> serving ``root``; ``mode``: serve | stall | down.

    ``down`` closes the listening socket (connections are refused); switching back rebinds the
    same port. ``stall`` accepts and never answers.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mode = "serve"
        self.requests = 0
        self._stop = threading.Event()
        self._httpd = None
        self.port = self._start(0)

    def _start(self, port: int) -> int:
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                host.requests += 1
                if host.mode == "stall":
                    host._stop.wait(600)
                    return
                path = host.root / self.path.lstrip("/").split("?")[0]
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self._httpd.server_address[1]

    def set_mode(self, mode: str) -> None:
        if mode == "down" and self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        elif mode != "down" and self._httpd is None:
            self._start(self.port)
        self.mode = mode

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()


def write_song_audio(path: Path, seconds: float, seed: int) -> None:
    """A short FLAC of the sample synthesiser's clean music (full band, no hiss), which passes the
    signal checks calibrated on real music; a 22 kHz sine chord with white noise was rightly called
    band-limited and noisy by them."""
    from sunorecsys.sample.audio import SAMPLE_RATE, STYLES, choose_spec, synthesize_song

    rng = np.random.default_rng(seed)
    genres = sorted(STYLES)
    spec = choose_spec(rng, genres[seed % len(genres)], seconds)
    sf.write(path, synthesize_song(spec, rng), SAMPLE_RATE, format="FLAC")


_TAGS = ["lo-fi, chill", "synthwave, retro", "acoustic folk", "drum and bass", "jazz, piano", "k-pop, dance",
         "ambient, drone", "metal, heavy"]
_WORDS = ["rain", "neon", "river", "summer", "midnight", "ocean", "city", "fire", "dust", "stars", "road", "glass"]


def song_record(song_id: str, created_at: dt.datetime, audio_url: str | None, seconds: float) -> dict:
    """A catalogue record in Suno's format (the fields ingestion reads); tags and prompt vary with
    the id so the recommender's text channels have words to work with."""
    n = sum(map(ord, song_id))
    words = " ".join(_WORDS[(n + k * 5) % len(_WORDS)] for k in range(3))
    return {"id": song_id, "title": f"Song {song_id}", "audio_url": audio_url,
            "created_at": created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "user_id": f"user-{n % 7}",
            "handle": f"creator{n % 7}", "display_name": f"Creator {n % 7}", "status": "complete",
            "major_model_version": "v4.5", "play_count": n % 50 + 1, "upvote_count": 1, "is_public": True,
            "metadata": {"tags": _TAGS[n % len(_TAGS)], "prompt": f"a song about {words}",
                         "duration": seconds, "type": "gen"}}


# --- the deployment ------------------------------------------------------------------------

@dataclass
class Deployment:
    """DAGSTER_HOME, the data root, the environment and the daemon process."""

    base: Path
    env: dict[str, str]
    daemon: subprocess.Popen | None = None
    log: io.TextIOBase | None = None

    @property
    def home(self) -> Path:
        return self.base / "dagster"

    @property
    def data(self) -> Path:
        return self.base / "data"

    @classmethod
    def create(cls, base: Path, **extra_env: str) -> Deployment:
        home, data = base / "dagster", base / "data"
        home.mkdir(parents=True)
        (data / "raw").mkdir(parents=True)
        config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
        # quicker to notice a dead run worker than the 10 s of a real deployment
        config["run_monitoring"]["poll_interval_seconds"] = 2
        (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        env = {**os.environ, "DAGSTER_HOME": str(home), "SUNORECSYS_DATA_DIR": str(data),
               "SUNORECSYS_EXECUTOR": "in_process", "SUNORECSYS_SENSOR_INTERVAL_S": "2",
               "SUNORECSYS_FETCH_AUDIO": "1", "SUNORECSYS_AUDIO_HOSTS": "127.0.0.1",
               "SUNORECSYS_AUDIO_SCHEMES": "http", "SUNORECSYS_FETCH_DEADLINE_S": "2",
               "SUNORECSYS_FETCH_WORKERS": "4", "SUNORECSYS_AUDIO_GIVE_UP_DAYS": "400",
               "PYTHONUNBUFFERED": "1", **extra_env}
        for name in ("SUNORECSYS_FLAMINGO_MODEL", "SUNORECSYS_AUDIOBOX_CHECKPOINT"):
            env.pop(name, None)
        return cls(base, env)

    def start_daemon(self) -> None:
        self.log = open(self.base / "daemon.log", "w")  # noqa: SIM115 - closed in stop()
        self.daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
            cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.daemon is not None:
            # the daemon leads its own process group (start_new_session): it and the code server
            # it started, and nothing else
            try:
                os.killpg(self.daemon.pid, signal.SIGTERM)
                self.daemon.wait(timeout=60)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            try:
                os.killpg(self.daemon.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.daemon.wait(timeout=30)
        if self.log is not None:
            self.log.close()


def _set_env(env: dict[str, str]):
    """Apply ``env`` to this process (the driver loads the same code location as the daemon)."""
    for key, value in env.items():
        os.environ[key] = value


# --- the soak ------------------------------------------------------------------------------

@dataclass
class Night:
    day: str
    songs: int
    runs: list[tuple[str, str, str]] = field(default_factory=list)  # (run id, what, status)
    recommendations: int = 0
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)   # "<what>:<step>" -> seconds (refit steps)
    counts: dict[str, int] = field(default_factory=dict)    # the ledger after the night (ledger_counts)
    stale_partitions: int | None = None                     # bumped days still of the old scorer version


@dataclass
class SoakPlan:
    """What happens on which simulated day (indexes into the list of days)."""

    days: int = 3
    songs_per_day: int = 3
    audio_seconds: float = 1.5
    empty_days: tuple[int, ...] = (1,)
    outage_day: int = 2              # host A refuses, host B stalls during the day; back for the night
    big_file_day: int = 2            # a large file of older songs lands beside the day's new songs
    big_file_songs: int = 60
    kill_night: int = 1              # the nightly run of that day is killed mid-way (SIGKILL)
    version_bump_night: int = 1      # partitions scored so far are marked as scored by an older version


class Soak:
    """Run :class:`SoakPlan` against a :class:`Deployment` and collect what happened."""

    def __init__(self, base: Path, plan: SoakPlan, timeout_s: float = 600.0) -> None:
        self.plan = plan
        self.timeout_s = timeout_s
        self.deployment = Deployment.create(base)
        self.cdn = base / "cdn"
        self.cdn.mkdir()
        self.host_a, self.host_b = AudioHost(self.cdn), AudioHost(self.cdn)
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.days = [today - dt.timedelta(days=plan.days + 1 - i) for i in range(plan.days)]
        self.ingested: set[str] = set()
        self.nights: list[Night] = []
        self.killed_run: str | None = None
        self.retry_of_killed: str | None = None
        self.bumped_days: list[str] = []
        self.events: list[str] = []
        self._instance = None
        self._workspace = None

    # -- setup / teardown --
    def __enter__(self) -> Self:
        import dagster as dg
        from dagster._core.workspace.context import WorkspaceProcessContext
        from dagster._core.workspace.load_target import WorkspaceFileTarget

        _set_env(self.deployment.env)
        # Create the instance's sqlite storage (and run its migrations) here, once, before the
        # daemon and its code server open it: three processes initialising a fresh DAGSTER_HOME at
        # once can leave two alembic heads ("more than one head present"; seen once, the code
        # location then failed to load).
        self._instance = dg.DagsterInstance.get()
        self._instance.get_runs(limit=1)
        self._instance.get_latest_materialization_event(dg.AssetKey("raw_songs"))
        self.deployment.start_daemon()
        self._workspace = WorkspaceProcessContext(self._instance, WorkspaceFileTarget([str(REPO / "workspace.yaml")]))
        self._stop_wall_clock_schedules()
        return self

    def _stop_wall_clock_schedules(self) -> None:
        """The driver does the scheduler's ticks for simulated times; the schedules (on by default)
        must not also fire at the real clock's 02:00 or :30 (an intraday run in the middle of a
        simulated day). The daemon's sensor and run queue stay on."""
        _, repo = self._repository()
        for schedule in repo.get_schedules():
            self._instance.stop_schedule(schedule.get_remote_origin_id(), schedule.selector_id, schedule)
        self.events.append("wall-clock schedules stopped (the driver ticks them for simulated times)")

    def _repository(self):
        context = self._workspace.create_request_context()
        location = context.get_code_location("sunorecsys")
        return location, next(iter(location.get_repositories().values()))

    def __exit__(self, *exc) -> None:
        try:
            if self._workspace is not None:
                self._workspace.__exit__(None, None, None)
            if self._instance is not None:
                self._instance.dispose()
        finally:
            self.deployment.stop()
            self.host_a.close()
            self.host_b.close()

    # -- the catalogue --
    def _write_day_file(self, index: int) -> list[str]:
        day = self.days[index]
        records, ids = [], []
        for j in range(self.plan.songs_per_day):
            song_id = f"d{index:02d}s{j:02d}-{day:%m%d}"
            host = self.host_a if j % 2 == 0 else self.host_b
            write_song_audio(self.cdn / f"{song_id}.flac", self.plan.audio_seconds, seed=index * 100 + j)
            created = day + dt.timedelta(hours=1 + j)
            records.append(song_record(song_id, created, host.url(f"{song_id}.flac"), self.plan.audio_seconds))
            ids.append(song_id)
        path = self.deployment.data / "raw" / f"songs_{day:%Y%m%d}.json"
        path.write_text(json.dumps(records))
        self._write_interactions(ids)
        return [path.name]

    def _write_big_file(self, index: int) -> str:
        """Older songs (before the simulated days), no audio anywhere: unscored with a reason."""
        first = self.days[0]
        records = [song_record(f"old{i:06d}", first - dt.timedelta(days=1 + i % 20, hours=i % 23), None, 30.0)
                   for i in range(self.plan.big_file_songs)]
        path = self.deployment.data / "raw" / "archive_older_songs.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
        return path.name

    def _write_interactions(self, new_ids: list[str]) -> None:
        path = self.deployment.data / "raw" / "interactions.csv"
        rows = [] if not path.exists() else [path.read_text()]
        lines = "".join(f"u{u},{sid},{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ},play,1.0\n"
                        for u in range(4) for sid in new_ids)
        path.write_text((rows[0] if rows else "user_id,song_id,timestamp,event,weight\n") + lines)

    # -- runs --
    def _runs(self, **tags):
        import dagster as dg

        return self._instance.get_runs(filters=dg.RunsFilter(tags=tags) if tags else None)

    def _wait(self, predicate, what: str, timeout: float | None = None):
        deadline = time.monotonic() + (timeout or self.timeout_s)
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(1.0)
        raise TimeoutError(f"timed out waiting for {what}; daemon log: {self.deployment.base / 'daemon.log'}")

    def _wait_finished(self, run_id: str) -> str:
        """Wait until ``run_id`` and any retry of it have finished; the final run's status."""
        import dagster as dg

        def final():
            run = self._instance.get_run_by_id(run_id)
            if not run.is_finished:
                return None
            if run.status == dg.DagsterRunStatus.FAILURE:
                retries = self._runs(**{"dagster/parent_run_id": run_id})
                if retries:
                    return retries[0].run_id if retries[0].is_finished else None
                # give the retry daemon a moment to queue the retry of a crashed run
                return None if run_id == self.killed_run else run_id
            return run_id
        last = self._wait(final, f"run {run_id}")
        return last

    def _sensor_runs_for(self, file_names: list[str]) -> list:
        return [r for r in self._runs() if any(n in r.tags.get(FILES_TAG, "") for n in file_names)]

    def _tick(self, night: dt.datetime) -> str:
        """The scheduler daemon's work for one tick of nightly_rescoring at ``night``."""
        from dagster._core.definitions.timestamp import TimestampWithTimezone
        from dagster._scheduler.scheduler import _submit_run_request

        location, repo = self._repository()
        schedule = repo.get_schedule("nightly_rescoring")
        data = location.get_schedule_execution_data(
            instance=self._instance, repository_handle=repo.handle, schedule_name=schedule.name,
            scheduled_execution_time=TimestampWithTimezone(night.timestamp(), "UTC"), log_key=None)
        assert data.run_requests and len(data.run_requests) == 1, data
        result = _submit_run_request(data.run_requests[0], self._workspace, schedule, night,
                                     logging.getLogger("soak"), None)
        assert result.error_info is None, result.error_info
        return result.submitted_run.run_id if result.submitted_run else result.existing_run.run_id

    def _kill_when_started(self, run_id: str) -> None:
        """SIGKILL the run's worker once its audio_checks step has started (as an OOM kill would)."""
        import dagster as dg

        def worker_pid():
            events = self._instance.all_logs(run_id)
            started = any(e.step_key == "audio_checks" and e.dagster_event and
                          e.dagster_event.event_type == dg.DagsterEventType.STEP_START for e in events)
            for e in events:
                if started and e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.ENGINE_EVENT:
                    pid = (e.dagster_event.engine_event_data.metadata or {}).get("pid")
                    if pid is not None:
                        return int(pid.value)
            return None
        pid = self._wait(worker_pid, f"the start of run {run_id}")
        os.kill(pid, signal.SIGKILL)
        self.killed_run = run_id
        self.events.append(f"killed run {run_id} (pid {pid}) during audio_checks")

    def _bump_versions(self, upto: int) -> None:
        """Make the partitions scored so far look scored by an older signal-checks version (their
        files and their recorded tags), as a deploy of a new checks version would leave them."""
        import dagster as dg

        from sunorecsys.warehouse.parquet import partition_path, write_parquet_atomic
        from sunorecsys_pipeline.versions import version_tags

        for day in self.days[:upto]:
            key = f"{day:%Y-%m-%d}"
            path = partition_path(self.deployment.data / "warehouse", "audio_checks", key)
            if not path.exists():
                continue
            frame = pd.read_parquet(path)
            frame["checks_version"] = "signal-checks/0"
            write_parquet_atomic(frame, path)
            self._instance.report_runless_asset_event(dg.AssetMaterialization(
                asset_key="audio_checks", partition=key, tags=version_tags("signal-checks/0")))
            self.bumped_days.append(key)
        self.events.append(f"scorer version bump: {self.bumped_days} marked as signal-checks/0")

    REFIT_STEPS = ("hybrid_recommender", "recommender_evaluation")

    def _refit_steps(self, night: Night) -> None:
        """Seconds of each refit step in the night's runs (STEP_SUCCESS durations)."""
        import dagster as dg

        for run_id, what, _status in night.runs:
            for e in self._instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS):
                if e.step_key in self.REFIT_STEPS:
                    night.steps[f"{what}:{e.step_key}"] = e.dagster_event.event_specific_data.duration_ms / 1000

    def ledger_counts(self) -> dict[str, int]:
        """Counts of the ledger: ingested, placed (rows in songs partitions), scored, unscored with a
        reason, and lost (ingested but in no partition, or neither scored nor given a reason)."""
        led = self.ledger()
        ended = led["scored"] | set(led["unscored_with_reason"])
        lost = (led["ingested"] - set(led["placed"])) | (led["ingested"] - ended)
        return {"ingested": len(led["ingested"]), "placed": len(led["placed"]), "scored": len(led["scored"]),
                "unscored_with_reason": len(led["unscored_with_reason"]), "lost": len(lost),
                "placed_twice": len(led["placed"]) - len(set(led["placed"]))}

    def _stale_partitions(self) -> int | None:
        if not self.bumped_days:
            return None
        versions = self.checks_versions()
        return sum("signal-checks/0" in versions.get(day, set()) for day in self.bumped_days)

    def _recommendation_rows(self) -> int:
        from sunorecsys.warehouse.parquet import read_table

        return len(read_table(self.deployment.data / "warehouse", "recommendations"))

    # -- the nights --
    def run(self, on_night=None) -> None:
        """Every day of the plan; ``on_night(night)`` after each (the bench prints progress)."""
        plan = self.plan
        for i, day in enumerate(self.days):
            started = time.monotonic()
            night = Night(day=f"{day:%Y-%m-%d}", songs=0)
            files: list[str] = []
            outage = i == plan.outage_day
            if outage:
                self.host_a.set_mode("down")
                self.host_b.set_mode("stall")
                self.events.append(f"{night.day}: host A refuses, host B stalls")
            if i not in plan.empty_days:
                files += self._write_day_file(i)
                night.songs = plan.songs_per_day
            if i == plan.big_file_day:
                files.append(self._write_big_file(i))
                self.events.append(f"{night.day}: {plan.big_file_songs} older songs arrive in one file")
            if files:  # the daemon's sensor starts one run for the new files
                sensor_runs = self._wait(lambda names=tuple(files): self._sensor_runs_for(list(names)),
                                         f"the sensor's run for {files}")
                for run in sensor_runs:
                    final = self._wait_finished(run.run_id)
                    night.runs.append((final, "sensor", str(self._instance.get_run_by_id(final).status.value)))
            if outage:
                self.host_a.set_mode("serve")
                self.host_b.set_mode("serve")
            if i == plan.version_bump_night:
                self._bump_versions(i)
            run_id = self._tick(day + dt.timedelta(days=1, hours=2))
            if i == plan.kill_night:
                self._kill_when_started(run_id)
            final = self._wait_finished(run_id)
            if run_id == self.killed_run:
                self.retry_of_killed = final
                night.runs.append((run_id, "nightly (killed)", "FAILURE"))
            night.runs.append((final, "nightly" + (" retry" if final != run_id else ""),
                               str(self._instance.get_run_by_id(final).status.value)))
            night.recommendations = self._recommendation_rows()
            night.seconds = time.monotonic() - started
            self._refit_steps(night)
            if self.processed_exists():
                night.counts = self.ledger_counts()
            night.stale_partitions = self._stale_partitions()
            self.nights.append(night)
            if on_night is not None:
                on_night(night)

    # -- the verdict --
    def processed_exists(self) -> bool:
        return (self.deployment.data / "processed" / "songs.parquet").exists()

    def ledger(self) -> dict:
        """Ingested ids, ids in songs partitions, scored ids and unscored ids with their reasons."""
        from sunorecsys.warehouse.parquet import read_table

        data = self.deployment.data
        ingested = set(pd.read_parquet(data / "processed" / "songs.parquet", columns=["song_id"])["song_id"])
        placed = read_table(data / "warehouse", "songs", columns=["song_id"])["song_id"]
        quality = read_table(data / "warehouse", "quality_scores")
        scored = set(quality.loc[quality["quality_score"].notna(), "song_id"])
        reasons = quality.loc[quality["quality_score"].isna() & quality["unscored_reason"].notna()]
        return {"ingested": ingested, "placed": list(placed), "scored": scored,
                "unscored_with_reason": dict(zip(reasons["song_id"], reasons["unscored_reason"])),
                "quality": quality}

    def failed_runs(self) -> list[str]:
        import dagster as dg

        return [r.run_id for r in self._runs() if r.status == dg.DagsterRunStatus.FAILURE]

    def failure_summary(self) -> str:
        """Each failed run with its step failures (for assertion messages)."""
        import dagster as dg

        lines = []
        for run_id in self.failed_runs():
            run = self._instance.get_run_by_id(run_id)
            lines.append(f"run {run_id} tags={ {k: v for k, v in run.tags.items() if k.startswith('sunorecsys')} }")
            for e in self._instance.all_logs(run_id):
                event = e.dagster_event
                if event is None:
                    continue
                if event.event_type == dg.DagsterEventType.STEP_FAILURE:
                    lines.append(f"  {e.step_key}: {event.step_failure_data.error.message.strip()[:800]}")
                elif event.event_type in (dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.ENGINE_EVENT) \
                        and ("fail" in (e.message or "").lower() or "exit" in (e.message or "").lower()):
                    lines.append(f"  {event.event_type_value}: {(e.message or '')[:400]}")
        return "\n".join(lines)

    def checks_versions(self) -> dict[str, set[str]]:
        from sunorecsys.warehouse.parquet import read_table

        checks = read_table(self.deployment.data / "warehouse", "audio_checks", columns=["date", "checks_version"])
        return checks.groupby("date")["checks_version"].agg(set).to_dict()

    def report(self) -> str:
        lines = [f"{n.day}: {n.songs} new songs, {n.recommendations} recommendation rows, {n.seconds:.0f} s, runs: "
                 + ", ".join(f"{what}={status}" for _, what, status in n.runs) for n in self.nights]
        return "\n".join(lines + self.events)
