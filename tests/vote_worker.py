"""One voter process of the concurrency test: `python vote_worker.py URL K N_GALAXIES VOTES`.

Prints one JSON line: {"k": K, "errors": [...], "seconds": s}. A separate interpreter (not a
multiprocessing child of pytest) so that nothing of the test process's state leaks into it."""
import json
import sys
import time

from galaxalign.store import RetirementRule, open_store, record_classification

ROUND = [["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]]


def main(url: str, k: int, n_galaxies: int, votes: int) -> None:
    store = open_store(url, upgrade=False)
    errors = []
    t0 = time.perf_counter()
    for i in range(votes):
        g = (i + k) % n_galaxies + 1  # processes share galaxies, so rows contend
        try:
            record_classification(store, f"p{k:02d}", g, ROUND, rule=RetirementRule(10 ** 6, 10 ** 6, 1.0))
        except Exception as e:  # anything reaching the caller is a failure of the store
            errors.append(f"{e.__class__.__name__}: {e}")
    store.dispose()
    print(json.dumps({"k": k, "errors": errors, "seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
