"""The proposal gate: whether the model's answer for one galaxy may be pre-selected on the Classify page
(and, for the same reason, counted as a vote in retirement — :mod:`galaxalign.store.retirement`).

A leaf module (numpy only) so that the store and :mod:`galaxalign.ood`, which calibrates the gate,
can both ask it; :func:`is_blind` (which tasks are the anchoring control) lives here for the same reason.
"""
from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["proposal_decision", "is_blind", "TARGET_PRECISION"]

TARGET_PRECISION = 0.90  # proposals shown must have been right this often on the valid split


def proposal_decision(confidence: float, ood: float | None, gate: dict | None) -> tuple[bool, str | None]:
    """Whether to pre-select a proposal, and if not, the one-line reason shown to the volunteer.

    ``gate`` is :meth:`Familiarity.summary`, possibly overridden by an admin
    (:func:`galaxalign.store.set_proposal_gate`: ``confidence_floor``, ``ood_max``, default 1). A model
    trained before calibration existed has none: its proposals are shown as before.
    """
    ood_max = (gate or {}).get("ood_max", 1.0)
    if ood is not None and np.isfinite(ood) and ood > ood_max:
        return False, (f"this galaxy looks unlike the galaxies the model learnt from (unfamiliarity {ood:.1f} × "
                       f"the usual limit), so it proposes nothing")
    if gate is not None and confidence < gate.get("confidence_floor", 0.0):
        floor = gate["confidence_floor"]
        if floor >= 1.0:
            return False, "the model's proposals were not reliable enough on held-out galaxies to be shown"
        return False, (f"the model is unsure ({confidence:.0%}; its proposals were right "
                       f"{gate.get('target_precision', TARGET_PRECISION):.0%} of the time only above {floor:.0%})")
    return True, None


def is_blind(blind_fraction: float, volunteer_id: int, galaxy_id: int) -> bool:
    """Whether this volunteer's task on this galaxy is a control that shows no proposal. Decided by a
    hash of the two ids, so the same task is blind on every page load and in every process, and a
    ``blind_fraction`` of all tasks are, independently of the galaxy's difficulty."""
    digest = hashlib.blake2b(f"{int(volunteer_id)}:{int(galaxy_id)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < float(blind_fraction)
