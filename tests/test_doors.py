"""Opening the doors (issue 23): guests, sign-up, names, password strength, sign-in limits, one-time links,
account management and erasure — on the store and the application layer, SQLite and PostgreSQL."""
import time

import pytest
from sqlalchemy import func, inspect, select, text

from galaxalign.access import Doorkeeper, Limits, SignInFailed, Throttled, make_link, read_link
from galaxalign.data import load_survey
from galaxalign.errors import GalaxalignError
from galaxalign.passwords import WeakPassword
from galaxalign.store import (AccessDenied, AccountSuspended, LinkInvalid, StoreError, add_volunteer, authenticate,
                              consensus_labels, create_guest, create_link, erase_account, export_classifications,
                              export_comments, export_flags, export_vote_fractions, get_volunteer, list_accounts,
                              moderation_log, my_data, next_galaxy_for, post_comment, project_settings, project_stats,
                              record_classification, register_survey, reinstate_account, require_role, reset_password,
                              set_flag, set_project_settings, set_role, sign_up, suspend_account, volunteer_history)
from galaxalign.store.models import Classification, Volunteer

ROUND = [["T01", "t01_smooth"], ["T07", "t07_round"], ["T06", "t06_no"]]
CIGAR = [["T01", "t01_smooth"], ["T07", "t07_cigar"], ["T06", "t06_no"]]
STRONG = "quartz-lantern-meadow-71"


@pytest.fixture
def project(store, synth_h5):
    survey = load_survey(synth_h5)
    register_survey(store, survey, "demo", known_fraction=0.0, gold_fraction=0.0)
    add_volunteer(store, "boss", "admin", "admin-password")
    add_volunteer(store, "vera", "volunteer", "volunteer-pw")
    return store, survey


def count(store, model=Volunteer):
    with store.read() as s:
        return s.scalar(select(func.count()).select_from(model))


# --- names and passwords ---------------------------------------------------------------------------------

def test_ada_ada_and_fullwidth_ada_are_one_name(project):
    store, _ = project
    sign_up(store, "Ada", STRONG)
    for other in ("ada", "ＡＤＡ", "Ａｄａ"):
        with pytest.raises(StoreError, match="already exists \\(as 'Ada'\\)"):
            sign_up(store, other, STRONG)
    assert count(store) == 3
    assert authenticate(store, "ａｄａ", STRONG).name == "Ada"  # signs in whatever the case or width


@pytest.mark.parametrize("password,why", [("", "must not be empty"), ("abc", "too short"), ("password", "too weak"),
                                          ("12345678", "too weak"), ("qwertyuiop", "too weak"),
                                          ("grace-hopper", "too close to your name"), ("iloveyou1", "too weak")])
def test_weak_passwords_are_refused_with_a_reason_and_nothing_is_made(project, password, why):
    store, _ = project
    before = count(store)
    with pytest.raises(WeakPassword, match=why) as e:
        sign_up(store, "grace-hopper", password)
    assert "\n" not in str(e.value) and str(e.value).startswith("password: ")
    assert count(store) == before


@pytest.mark.parametrize("name,why", [("VERA", "already exists"), ("x" * 10_000, "at most 40"),
                                      ("eve\x07", "control"), ("eve\u200b", "control"), ("", "must not be empty"),
                                      ("e", "2–40"), ("bad name", "2–40")])
def test_bad_names_are_one_line_and_make_nothing(project, name, why):
    store, _ = project
    before = count(store)
    with pytest.raises(GalaxalignError, match=why) as e:
        sign_up(store, name, STRONG)
    assert "\n" not in str(e.value) and len(str(e.value)) < 200
    assert count(store) == before


# --- sign-in limits --------------------------------------------------------------------------------------

def test_the_sixth_wrong_password_is_refused_unchecked_and_the_right_one_works_after_the_backoff(project, monkeypatch):
    store, _ = project
    import galaxalign.store.accounts as accounts

    from argon2.exceptions import VerifyMismatchError

    checked = []
    real = accounts._ph()

    def verify(self, h, p):  # counts every check; a wrong guess fails at once, as argon2 would, only faster
        checked.append(p)  # (so that five of them fit in the 2-s window however loaded the machine is)
        if p == "not-it":
            raise VerifyMismatchError("The password does not match the supplied hash")
        return real.verify(h, p)
    monkeypatch.setattr(accounts, "_ph", lambda: type("Counting", (), {"verify": verify,
                                                                       "hash": lambda self, p: real.hash(p)})())
    door = Doorkeeper(store, Limits(sign_in_account=("5/2 second",)), storage_uri="memory://")
    for _ in range(5):
        with pytest.raises(SignInFailed, match="unknown name or wrong password"):
            door.sign_in("vera", "not-it", "10.0.0.1")
    assert len(checked) == 5
    with pytest.raises(Throttled, match=r"too many failed sign-ins for this account; try again in \d+ s"):
        door.sign_in("VERA", "volunteer-pw", "10.0.0.2")  # the right password, another address: still held
    assert len(checked) == 5  # refused before argon2 ever saw it
    log = moderation_log(store)
    assert (log.action == "lockout").sum() == 1 and log[log.action == "lockout"].volunteer.iloc[0] == "vera"
    time.sleep(2.2)
    assert door.sign_in("vera", "volunteer-pw", "10.0.0.1").name == "vera"


def test_one_address_guessing_many_names_is_held_too(project):
    store, _ = project
    door = Doorkeeper(store, Limits(sign_in_client=("3/minute",)), storage_uri="memory://")
    for name in ("a1", "a2", "a3"):
        with pytest.raises(SignInFailed):
            door.sign_in(name, "guess-guess", "10.9.9.9")
    with pytest.raises(Throttled, match="from this address"):
        door.sign_in("vera", "volunteer-pw", "10.9.9.9")
    assert door.sign_in("vera", "volunteer-pw", "10.9.9.8").name == "vera"


def test_limits_are_shared_through_redis(project):
    import os

    url = os.environ.get("GALAXALIGN_TEST_REDIS_URL")
    if not url:
        pytest.skip("no Redis here (.ci/services.sh starts one)")
    store, _ = project
    a = Doorkeeper(store, Limits(sign_in_account=("2/minute",)), storage_uri=url)
    b = Doorkeeper(store, Limits(sign_in_account=("2/minute",)), storage_uri=url)  # a second web process
    a.clear()
    for door in (a, b):
        with pytest.raises(SignInFailed):
            door.sign_in("vera", "wrong-wrong", "10.0.0.1")
    with pytest.raises(Throttled):
        a.sign_in("vera", "volunteer-pw", "10.0.0.1")
    a.clear()


# --- guests ----------------------------------------------------------------------------------------------

def test_a_guest_who_joins_keeps_votes_favourites_and_progress(project):
    store, survey = project
    assert next_galaxy_for(store, None, "demo") is not None  # a visitor is served before any row exists
    gid, name = create_guest(store)
    assert name.startswith("guest-") and get_volunteer(store, gid).role == "guest"
    voted = []
    for _ in range(3):
        g = next_galaxy_for(store, gid, "demo")
        record_classification(store, gid, g.id, ROUND)
        voted.append(g.id_str)
    set_flag(store, gid, voted[0], "favourite")
    with pytest.raises(AccessDenied):
        require_role(store, gid, "volunteer")
    assert sign_up(store, "Grace", STRONG, guest=gid) == gid  # the guest row becomes the account
    assert get_volunteer(store, "grace").role == "volunteer"
    assert list(volunteer_history(store, "Grace").id_str) == voted
    assert my_data(store, "Grace")["flags"][0]["galaxy"] == voted[0]
    ex = export_classifications(store, "demo")
    assert len(ex) == 3 and ex.user_name.str.startswith("not-logged-in-").all()  # cast as a guest: marked
    assert all('"guest": true' in m for m in ex.metadata)
    assert count(store) == 3  # boss, vera, Grace: nothing copied


def test_guest_votes_stored_but_not_counted_until_the_guest_joins(project):
    store, _ = project
    set_project_settings(store, "boss", guest_votes="store")
    gid, _ = create_guest(store)
    g = next_galaxy_for(store, gid, "demo")
    r = record_classification(store, gid, g.id, ROUND)
    assert r.n_votes == 0 and count(store, Classification) == 1  # stored, not counted
    r = record_classification(store, "vera", g.id, ROUND)
    assert r.n_votes == 1
    sign_up(store, "Grace", STRONG, guest=gid)
    add_volunteer(store, "third", "volunteer", None)
    assert record_classification(store, "third", g.id, ROUND).n_votes == 3  # the joined guest's vote counts now


def test_guest_votes_are_rate_limited(project):
    store, _ = project
    door = Doorkeeper(store, storage_uri="memory://")
    for _ in range(3):
        door.check_guest_vote(7, "10.1.1.1", per_minute=3)
    with pytest.raises(Throttled, match="faster than the project allows for guests"):
        door.check_guest_vote(7, "10.1.1.1", per_minute=3)
    door.check_guest_vote(8, "10.1.1.1", per_minute=3)  # another guest at the same address (a classroom)


# --- doors and links -------------------------------------------------------------------------------------

def test_an_invite_only_project_refuses_sign_up_without_a_link_and_takes_a_link_once(project):
    store, _ = project
    set_project_settings(store, "boss", join="invite")
    with pytest.raises(AccessDenied, match="invitation-only"):
        sign_up(store, "Grace", STRONG)
    url = make_link(store, create_link(store, "boss", "invite", role="researcher"), "invite", "http://127.0.0.1:8501")
    token = url.split("invite=")[1]
    link = read_link(store, token, "invite")
    sign_up(store, "Grace", STRONG, link=link)
    assert get_volunteer(store, "grace").role == "researcher"
    before = count(store)
    with pytest.raises(LinkInvalid, match="already used"):
        sign_up(store, "Alan", STRONG, link=link)
    with pytest.raises(LinkInvalid, match="altered"):
        read_link(store, token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb"), "invite")
    with pytest.raises(LinkInvalid, match="altered"):
        read_link(store, token, "reset")  # an invitation is not a reset link
    short = create_link(store, "boss", "invite", hours=0.0002)
    time.sleep(1.0)
    with pytest.raises(LinkInvalid, match="expired"):
        sign_up(store, "Alan", STRONG, link=short)
    set_project_settings(store, "boss", join="closed")
    with pytest.raises(AccessDenied, match="closed"):
        sign_up(store, "Alan", STRONG, link=create_link(store, "boss", "invite"))
    assert count(store) == before
    assert {"invite", "sign-up", "settings"} <= set(moderation_log(store).action)


def test_a_reset_link_works_once(project):
    store, _ = project
    link = read_link(store, make_link(store, create_link(store, "boss", "reset", "vera"), "reset").split("reset=")[1],
                     "reset")
    with pytest.raises(WeakPassword):
        reset_password(store, link, "password")  # refused, and the link is not used up by it
    assert reset_password(store, link, STRONG) == "vera"
    assert authenticate(store, "vera", STRONG) is not None and authenticate(store, "vera", "volunteer-pw") is None
    with pytest.raises(LinkInvalid, match="already used"):
        reset_password(store, link, "another-fine-passphrase-9")


# --- managing accounts -----------------------------------------------------------------------------------

def test_a_role_change_applies_on_the_next_request_and_the_last_admin_stays(project):
    store, _ = project
    with pytest.raises(AccessDenied):
        require_role(store, "vera", "researcher")
    assert set_role(store, "boss", "vera", "researcher") == "volunteer"
    assert require_role(store, "vera", "researcher").role == "researcher"
    with pytest.raises(StoreError, match="last admin"):
        set_role(store, "boss", "boss", "volunteer")
    with pytest.raises(AccessDenied, match="needs an admin"):
        set_role(store, "vera", "boss", "volunteer")


def test_a_suspended_volunteer_can_neither_sign_in_nor_vote(project):
    store, _ = project
    g = next_galaxy_for(store, "vera", "demo")
    with pytest.raises(StoreError, match="say why"):
        suspend_account(store, "boss", "vera", "")
    suspend_account(store, "boss", "vera", "spam in Talk")
    with pytest.raises(AccountSuspended, match="spam in Talk"):
        authenticate(store, "vera", "volunteer-pw")
    with pytest.raises(AccessDenied, match="suspended"):
        record_classification(store, "vera", g.id, ROUND)
    assert count(store, Classification) == 0
    assert bool(list_accounts(store, search="VER").suspended.iloc[0])
    reinstate_account(store, "boss", "vera")
    record_classification(store, "vera", g.id, ROUND)
    assert list(moderation_log(store).action[:2]) == ["reinstate", "suspend-acct"]


def test_erasing_an_account_keeps_the_science_and_leaves_no_personal_data(project):
    store, _ = project
    ada = sign_up(store, "Ada-Lovelace", STRONG, email="ada@analytical.example")
    add_volunteer(store, "bob", "volunteer", None)
    galaxies = []
    for k in range(4):
        g = next_galaxy_for(store, ada, "demo")
        record_classification(store, ada, g.id, ROUND if k % 2 else CIGAR)
        record_classification(store, "bob", g.id, ROUND)
        galaxies.append(g.id)
    set_flag(store, ada, galaxies[0], "favourite")
    post_comment(store, ada, galaxies[0], "A lovely #ring, see @bob")
    post_comment(store, "bob", galaxies[0], "Thanks @Ada-Lovelace!")
    before = (consensus_labels(store, "demo"), len(export_classifications(store, "demo")),
              len(export_vote_fractions(store, "demo")), len(export_flags(store, "demo")),
              len(export_comments(store, "demo")))
    placeholder = erase_account(store, "boss", "ada-lovelace")
    after = (consensus_labels(store, "demo"), len(export_classifications(store, "demo")),
             len(export_vote_fractions(store, "demo")), len(export_flags(store, "demo")),
             len(export_comments(store, "demo")))
    assert after[0].drop(columns=[]).equals(before[0]) and after[1:] == before[1:]
    assert placeholder.startswith("erased-") and authenticate(store, placeholder, STRONG) is None
    # no personal data anywhere: every text cell of every table, and every export
    dumps = []
    with store.read() as s:
        for table in inspect(s.bind).get_table_names():
            dumps += [str(r) for r in s.execute(text(f"SELECT * FROM {table}")).all()]
    for frame in (export_classifications(store, "demo"), export_vote_fractions(store, "demo"),
                  export_flags(store, "demo"), export_comments(store, "demo"), list_accounts(store)):
        dumps.append(frame.to_csv())
    blob = "\n".join(dumps).lower()
    # bob's comment quotes the name as he typed it: his words, kept (Talk text is not the account's data)
    blob = blob.replace("thanks @ada-lovelace!", "")
    assert "ada-lovelace" not in blob and "analytical.example" not in blob and "$argon2" in blob  # others' hashes stay
    assert set(export_comments(store, "demo").volunteer) == {"[deleted]", "bob"}
    with pytest.raises(StoreError, match="already erased"):
        erase_account(store, "boss", placeholder)


def test_home_page_figures(project):
    store, _ = project
    g = next_galaxy_for(store, "vera", "demo")
    record_classification(store, "vera", g.id, ROUND)
    set_flag(store, "vera", g.id, "favourite")
    fig = project_stats(store)
    assert fig["galaxies"] > 0 and fig["classified"] == 1 and fig["classifications"] == 1 and fig["today"] == 1
    assert fig["volunteers"] == 1 and fig["per_day"].classifications.iloc[-1] == 1 and len(fig["per_day"]) == 30
    assert fig["favourites"][0][2] == g.id_str
    with pytest.raises(StoreError, match="join mode 'ajar'"):
        set_project_settings(store, "boss", join="ajar")
    with pytest.raises(StoreError, match="needs an admin"):
        set_project_settings(store, "vera", join="closed")
    assert project_settings(store).join == "open"
