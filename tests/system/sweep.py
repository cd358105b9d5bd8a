"""What a killed test run leaves behind, and its removal at the start of the next."""

from __future__ import annotations

import time
from pathlib import Path

from nspawn import CGROUP_PREFIX, cgroup_hierarchies, forget_nspawn_state, remove_cgroup
from roots import WORK_DIR, in_use, remove_tree


def sweep_stale(min_age: float = 60.0) -> list[Path]:
    """Remove what a killed test run left behind (copies and cgroups); returns what it removed.

    A copy is stale when nobody holds its lock; `min_age` spares a copy that is being created.
    """
    removed: list[Path] = []
    for hierarchy in cgroup_hierarchies():
        for group in hierarchy.glob(f"{CGROUP_PREFIX}*"):
            work = WORK_DIR / group.name[len(CGROUP_PREFIX) :]
            if not work.exists() or not in_use(work):
                remove_cgroup(group)
                removed.append(group)
    if WORK_DIR.is_dir():
        for work in WORK_DIR.iterdir():
            if work.is_dir() and time.time() - work.stat().st_mtime > min_age and not in_use(work):
                forget_nspawn_state(work)
                remove_tree(work)
                removed.append(work)
    return removed
