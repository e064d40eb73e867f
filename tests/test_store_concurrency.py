"""16 processes × 100 votes each against one store: exactly 1,600 rows, no duplicates, no lock errors."""
import multiprocessing as mp
import time

import pytest
from sqlalchemy import func, select

from galaxalign.data import load_survey
from galaxalign.store import RetirementRule, add_volunteer, open_store, record_classification, register_survey
from galaxalign.store.models import Classification, Galaxy

PROCS, VOTES = 16, 100
ROUND = [["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]]


def _voter(url: str, k: int, n_galaxies: int, q) -> None:
    store = open_store(url, upgrade=False)
    errors = []
    t0 = time.perf_counter()
    for i in range(VOTES):
        # every process votes on galaxies that other processes vote on too, so rows contend
        g = (i + k) % n_galaxies + 1
        try:
            record_classification(store, f"p{k:02d}", g, ROUND, rule=RetirementRule(10 ** 6, 10 ** 6, 1.0))
        except Exception as e:  # anything reaching the caller is a failure of the store
            errors.append(f"{e.__class__.__name__}: {e}")
    q.put((k, errors, time.perf_counter() - t0))
    store.dispose()


@pytest.fixture
def contended(db_url, tmp_path):
    from conftest import write_galaxy10

    store = open_store(db_url)
    register_survey(store, load_survey(write_galaxy10(tmp_path / "g.h5", n=VOTES + PROCS)), "load")
    for k in range(PROCS):
        add_volunteer(store, f"p{k:02d}")
    store.dispose()
    return db_url


def test_sixteen_processes_vote_without_loss_or_lock_errors(contended):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_voter, args=(contended, k, VOTES + PROCS, q)) for k in range(PROCS)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [q.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    wall = time.perf_counter() - t0
    errors = [e for _, errs, _ in results for e in errs]
    assert errors == []
    store = open_store(contended, upgrade=False)
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Classification)) == PROCS * VOTES
        pairs = s.execute(select(Classification.galaxy_id, Classification.volunteer_id)).all()
        assert len(set(pairs)) == PROCS * VOTES
        # every galaxy's vote counter matches its rows: no lost update under contention
        counts = dict(s.execute(select(Classification.galaxy_id, func.count()).group_by(Classification.galaxy_id)).all())
        for gid, n_votes in s.execute(select(Galaxy.id, Galaxy.n_votes)).all():
            assert counts.get(gid, 0) == n_votes
    store.dispose()
    print(f"\n{store.dialect}: {PROCS * VOTES} votes from {PROCS} processes in {wall:.1f} s "
          f"({PROCS * VOTES / wall:.0f} votes/s incl. process start)")
