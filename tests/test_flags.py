"""Favourites and "something odd" flags: stored once per volunteer and kind, counted, exported, refused
cleanly."""
import pytest

from galaxalign.data import load_survey
from galaxalign.store import (StoreError, add_volunteer, export_flags, galaxy_flag_counts, register_survey, set_flag,
                              volunteer_flags)


@pytest.fixture
def flagged(store, synth_h5):
    survey = load_survey(synth_h5)
    register_survey(store, survey, "demo")
    for name in ("ada", "bob"):
        add_volunteer(store, name, "volunteer", None)
    return survey


def test_flags_are_one_per_kind_counted_and_exported(store, flagged):
    ids = flagged.id_str
    assert set_flag(store, "ada", ids[0], "favourite") and set_flag(store, "ada", ids[0], "favourite")  # twice: one
    set_flag(store, "ada", ids[1], "odd", reason="ring")
    set_flag(store, "ada", ids[1], "odd", reason="lens or arc")  # a second odd flag replaces the reason
    set_flag(store, "bob", ids[1], "odd", reason="lens or arc")
    set_flag(store, "bob", ids[2], "odd", reason="artefact")
    mine = volunteer_flags(store, "ada")
    assert sorted(zip(mine.id_str, mine.kind, mine.reason.fillna(""))) == sorted(
        [(ids[0], "favourite", ""), (ids[1], "odd", "lens or arc")])
    counts = galaxy_flag_counts(store, "demo").set_index("id_str")
    assert (counts.loc[ids[1], "odd"], counts.loc[ids[0], "favourites"], counts.loc[ids[2], "odd"]) == (2, 1, 1)
    assert galaxy_flag_counts(store, "demo").id_str[0] == ids[1]  # most flagged first
    lens = galaxy_flag_counts(store, "demo", reason="lens or arc")
    assert list(lens.id_str[lens.odd > 0]) == [ids[1]]  # the seed of a hunt for lenses
    out = export_flags(store, "demo")
    assert len(out) == 4 and set(out.volunteer) == {"ada", "bob"} and out.created_at.notna().all()
    assert not set_flag(store, "ada", ids[0], "favourite", on=False)
    assert len(export_flags(store, "demo")) == 3


def test_bad_flags_are_one_line_and_write_nothing(store, flagged):
    ids = flagged.id_str
    for args, msg in (((ids[0], "like"), "flag kind 'like' must be one of favourite, odd"),
                      ((ids[0], "odd"), "odd-flag reason None must be one of artefact"),
                      ((ids[0], "odd", True, "weird"), "odd-flag reason 'weird'"),
                      ((ids[0], "favourite", True, "ring"), "a favourite takes no reason"),
                      (("nope", "favourite"), "galaxy 'nope' does not exist")):
        with pytest.raises(StoreError, match=msg):
            set_flag(store, "ada", *args)
    assert export_flags(store, "demo").empty
