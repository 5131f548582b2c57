"""What an indexing run must do: ``plan_run`` compares a scan with the stored rows (``storage.media.media_state``)
and decides per file whether it is unchanged, moved, gone or to be (re)read. A pure function: the content
hash is passed in, nothing is read or written here."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from app.library.scanner import ScannedFile, ScanResult
from app.library.storage.media import StoredMedia


@dataclass
class Job:
    """A file to (re)read: its row (None for a new file), the hash it had when it was last read, and
    whether the run's model already embedded it."""

    file: ScannedFile
    row_id: int | None
    old_hash: str | None
    has_embedding: bool


@dataclass
class RunPlan:
    jobs: list[Job] = field(default_factory=list)  # files to read
    moves: list[tuple[ScannedFile, StoredMedia]] = field(default_factory=list)  # new path, the row it keeps
    gone: list[int] = field(default_factory=list)  # rows whose file is no longer there
    unchanged: int = 0


def plan_run(scan: ScanResult, stored: dict[str, StoredMedia], retry_failed: bool,
             hash_of: Callable[[ScannedFile], str | None]) -> RunPlan:
    """Decide per file: unchanged, moved, deleted, or to be (re)read. ``hash_of`` is asked only for new
    files whose size matches a missing row (a move candidate)."""
    plan = RunPlan()
    seen: set[str] = set()
    new_jobs: list[Job] = []
    for file in scan.files:
        path = str(file.path)
        seen.add(path)
        row = stored.get(path)
        if row is None:
            new_jobs.append(Job(file, None, None, False))
            continue
        same_stat = row.size == file.size and row.mtime_ns == file.mtime_ns
        if same_stat and (row.status == "forgotten" or (row.status == "error" and not retry_failed)
                          or (row.status == "ok" and row.has_embedding)):
            plan.unchanged += 1
            continue
        plan.jobs.append(Job(file, row.id, row.hash if row.status == "ok" else None, row.has_embedding))

    # Rows whose file is gone, except under folders that could not be read this time.
    unreadable = [str(p).rstrip("/") + "/" for p in scan.unreadable]
    missing = {
        path: row for path, row in stored.items()
        if path not in seen and row.status != "forgotten"
        and not any(path.startswith(u) or path == u.rstrip("/") for u in unreadable)
    }
    missing.update({p: r for p, r in stored.items() if r.status == "forgotten" and p not in seen
                    and not any(p.startswith(u) for u in unreadable)})
    # Moves: a new path with the content of a missing row keeps that row (and its embeddings).
    by_size: dict[int, list[StoredMedia]] = {}
    for row in missing.values():
        if row.status == "ok" and row.hash:
            by_size.setdefault(row.size, []).append(row)
    for job in new_jobs:
        candidates = by_size.get(job.file.size)
        if candidates:
            digest = hash_of(job.file)
            match = next((r for r in candidates if r.hash == digest and r.path in missing), None)
            if match is not None:
                missing.pop(match.path)
                plan.moves.append((job.file, match))
                continue
        plan.jobs.append(job)
    plan.gone = [row.id for row in missing.values()]
    return plan
