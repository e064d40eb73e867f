"""The real app in headless Chromium (Debian's package), driven by Playwright for Python: sign in,
classify three galaxies through the buttons, see three rows in the database, run a similarity
search, save screenshots. Set GALAXALIGN_SCREENSHOT_DIR to keep them."""
import os
import re
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from browser_flow import CHROMIUM, CHROMIUM_ARGS, answer, cut_labels, settle, streamlit_server, walk_through

def failure_shots(browser, folder: Path) -> None:
    """What every open page showed when a step failed: failure<context>.png in ``folder``."""
    for k, ctx in enumerate(browser.contexts):
        for p in ctx.pages:
            p.screenshot(path=str(folder / f"failure{k}.png"), full_page=True)


pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed; `make test` installs it")


def test_sign_in_classify_three_and_search(workspace, tmp_path):
    from galaxalign.store import open_store
    from galaxalign.store.models import Classification
    from galaxalign.workspace import Workspace

    out = Path(os.environ.get("GALAXALIGN_SCREENSHOT_DIR") or tmp_path / "shots")
    counted = []

    def three_rows():
        store = open_store(Workspace(workspace).database_url, upgrade=False)
        with store.read() as s:
            counted.append(s.scalar(select(func.count()).select_from(Classification)))
        store.dispose()

    with streamlit_server(workspace, tmp_path / "streamlit.log") as url:
        walk_through(url, "adam", "admin-password", out, n_votes=3, on_votes=three_rows)
    assert counted == [3]
    assert all((out / f).stat().st_size > 10_000 for f in ("classify.png", "explore.png", "search.png", "admin.png"))


def test_a_volunteer_classifies_with_number_keys_and_favourites_with_f(workspace, tmp_path):
    """Keys only: 1–9 answer the current question in the order shown, F favourites, ? opens the field
    guide; typing in a text box (the sign-in form) answers nothing. Then the galaxy is flagged as odd,
    and on a wide screen and a laptop's every button's label is shown whole."""
    from playwright.sync_api import expect, sync_playwright

    from galaxalign.store import open_store, volunteer_flags, volunteer_stats
    from galaxalign.taxonomy import GZ2_TREE
    from galaxalign.workspace import Workspace

    def key_of(task: str, answer: str) -> str:
        return str([a.id for a in GZ2_TREE[task].answers].index(answer) + 1)

    path = [("T01", "t01_smooth"), ("T07", "t07_round"), ("T06", "t06_no")]
    with streamlit_server(workspace, tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        expect.set_options(timeout=120_000)
        try:
            page.goto(f"{url}/signin")
            page.get_by_label("Name").fill("vera")
            page.get_by_role("textbox", name="Password").fill("volunteer-pw")
            page.get_by_role("textbox", name="Password").press("Enter")
            heading = page.get_by_role("heading", name="Classify", exact=True)
            expect(heading).to_be_visible()
            for k in range(3):
                expect(page.get_by_role("heading", name=GZ2_TREE["T01"].question)).to_be_visible()
                heading.click()  # focus on the page, not in a widget
                for task, ans in path:
                    expect(page.get_by_role("heading", name=GZ2_TREE[task].question)).to_be_visible()
                    settle(page)  # a key pressed while a run redraws the page can land on a stale button
                    page.keyboard.press(key_of(task, ans))
                expect(page.get_by_text(re.compile(rf"You have classified {k + 1} galax"))).to_be_visible()
            settle(page)
            heading.click()
            page.keyboard.press("f")
            expect(page.get_by_role("button", name="★ Favourite")).to_be_visible()
            settle(page)
            heading.click()
            page.keyboard.press("?")  # the field guide of the current question opens
            guide = page.locator("[data-testid='stPopoverBody']")
            expect(guide).to_be_visible()
            expect(guide).to_contain_text(GZ2_TREE["T01"].answers[0].help)
            page.keyboard.press("Escape")
            page.get_by_role("button", name="⚑ Odd", exact=True).click()  # and flag the galaxy as odd
            page.get_by_text("lens or arc", exact=True).click()
            page.get_by_role("button", name="Flag it").click()
            expect(page.get_by_role("button", name="⚑ Odd ✓", exact=True)).to_be_visible()
            for width in (1400, 1000):  # a wide screen and a laptop's: every answer is read whole
                page.set_viewport_size({"width": width, "height": 950})
                settle(page)
                page.wait_for_timeout(300)
                assert page.locator(".st-key-ans_t01_features button").first.is_visible()
                assert cut_labels(page) == [], width
        except Exception:
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    store = open_store(Workspace(workspace).database_url, upgrade=False)
    stats = volunteer_stats(store, "vera")
    flags = volunteer_flags(store, "vera")
    store.dispose()
    assert int(stats.votes[0]) == 3
    assert sorted(zip(flags.kind, flags.reason.fillna(""))) == [("favourite", ""), ("odd", "lens or arc")]


def test_talk_in_the_browser_tutorial_once_hashtag_hostile_comment_inert_and_hidden(workspace, tmp_path):
    """A new volunteer sees the tutorial once; posts a comment with a hashtag from Classify's Talk button and
    finds the galaxy under the tag; a hostile comment shows as the text typed (no script runs, no element
    or link is made of it); an admin hides it and the volunteer no longer sees it."""
    from playwright.sync_api import expect, sync_playwright

    from galaxalign.taxonomy import GZ2_TREE

    hostile = "<script>alert('s')</script> <img src=x onerror=alert('i')> [win](javascript:alert('j')) #Ring"
    shots = Path(os.environ.get("GALAXALIGN_SCREENSHOT_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with streamlit_server(workspace, tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        dialogs = []
        expect.set_options(timeout=120_000)

        def signed_in(name, password):
            page = browser.new_context(viewport={"width": 1400, "height": 950}).new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(f"{url}/signin")
            page.get_by_label("Name").fill(name)
            page.get_by_role("textbox", name="Password").fill(password)
            page.get_by_role("textbox", name="Password").press("Enter")
            expect(page.get_by_role("heading", name="Classify", exact=True)).to_be_visible()
            return page

        try:
            vera = signed_in("vera", "volunteer-pw")
            expect(vera.get_by_role("heading", name="How classifying works")).to_be_visible()
            vera.get_by_role("button", name="Start classifying").click()
            expect(vera.get_by_role("heading", name="How classifying works")).to_have_count(0)
            vera.close()
            vera = signed_in("vera", "volunteer-pw")  # a second visit: no tutorial
            expect(vera.get_by_role("heading", name=GZ2_TREE["T01"].question)).to_be_visible()
            expect(vera.get_by_role("heading", name="How classifying works")).to_have_count(0)

            vera.get_by_role("button", name=re.compile("Talk")).click()
            expect(vera.get_by_role("heading", name="Talk", exact=True)).to_be_visible()
            box = vera.get_by_label("Add to the discussion")
            box.fill("Is that a **ring**? #Ring")
            vera.get_by_role("button", name="Post").click()
            expect(vera.locator(".ga-comment strong", has_text="ring")).to_be_visible()
            box.fill(hostile)
            vera.get_by_role("button", name="Post").click()
            shown = vera.locator(".ga-comment", has_text="alert('s')")
            expect(shown).to_contain_text("<script>alert('s')</script> <img src=x onerror=alert('i')>")
            assert shown.locator("script, img, iframe, a").count() == 0  # text, not elements; no link made
            assert vera.locator(".ga-comment [onerror], .ga-comment a[href^='javascript']").count() == 0
            vera.screenshot(path=str(shots / "talk_thread.png"), full_page=True)
            vera.locator(".st-key-talk_view").get_by_text("Tags", exact=True).click()
            expect(vera.get_by_text("#ring: 1 galaxy")).to_be_visible()
            expect(vera.get_by_role("button", name="Open thread")).to_have_count(1)

            adam = signed_in("adam", "admin-password")
            adam.get_by_role("link", name="Talk").click()
            expect(adam.get_by_role("heading", name="Talk", exact=True)).to_be_visible()
            hostile_box = adam.locator("[class*='st-key-talk_c_recent_']").filter(has_text="alert('s')")
            hostile_box.get_by_role("button", name="Hide").click()
            expect(hostile_box.get_by_text("hidden by a moderator")).to_be_visible()

            vera.locator(".st-key-talk_view").get_by_text("Recent", exact=True).click()
            expect(vera.locator(".ga-comment strong", has_text="ring")).to_be_visible()
            expect(vera.locator(".ga-comment", has_text="alert('s')")).to_have_count(0)
        except Exception:
            failure_shots(browser, tmp_path)
            raise
        finally:
            browser.close()
    assert dialogs == []  # no alert() ran, anywhere


def test_a_visitor_classifies_three_as_a_guest_joins_and_finds_them_and_an_invitation_works_once(workspace, tmp_path):
    """The public's way in, in Chromium: the home page; three galaxies as a guest; Join in one form; the
    three on My progress. Then the project becomes invite-only: no Join without a link, and one link
    makes exactly one account."""
    from playwright.sync_api import expect, sync_playwright

    from galaxalign.access import make_link
    from galaxalign.store import create_link, get_volunteer, open_store, set_project_settings, volunteer_history
    from galaxalign.workspace import Workspace

    shots = Path(os.environ.get("GALAXALIGN_SCREENSHOT_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with streamlit_server(workspace, tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        expect.set_options(timeout=120_000)

        def visitor(path=""):
            page = browser.new_context(viewport={"width": 1400, "height": 950}).new_page()
            page.goto(url + path)
            return page

        try:
            page = visitor()
            expect(page.get_by_role("heading", name="galaxalign", exact=True)).to_be_visible()
            expect(page.get_by_text(re.compile(r"galaxies retired"))).to_be_visible()
            page.screenshot(path=str(shots / "home.png"), full_page=True)
            page.get_by_role("button", name="Start classifying").click()
            expect(page.get_by_role("heading", name="How classifying works")).to_be_visible()
            page.get_by_role("button", name="Start classifying").click()  # the tutorial, once per visit
            expect(page.get_by_role("heading", name="How classifying works")).to_have_count(0)
            for k in range(3):
                # .first: while a run redraws the page, the element it replaces may still be there a moment
                expect(page.get_by_role("heading", name="Is the galaxy simply smooth and rounded, with no sign of "
                                                        "a disk?").first).to_be_visible()
                if k == 1:
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(shots / "guest_classify.png"))
                for a, nxt in (("t01_smooth", "How rounded is it?"), ("t07_round", "Is there anything odd?"),
                               ("t06_no", None)):
                    answer(page, a)  # once the page has settled: a click during a redraw can be lost
                    if nxt:
                        expect(page.get_by_role("heading", name=nxt).first).to_be_visible()
                expect(page.get_by_text(re.compile(rf"You have classified {k + 1} galax"))).to_be_visible()
            expect(page.get_by_text(re.compile(r"Classifying as guest"))).to_be_visible()
            page.get_by_role("link", name="Join").click()
            expect(page.get_by_role("heading", name=re.compile("^Join"))).to_be_visible()
            page.get_by_role("textbox", name="Name").fill("Henrietta")
            page.get_by_role("textbox", name="Password").fill("nebula-cartwheel-lantern")
            page.screenshot(path=str(shots / "join.png"))
            page.get_by_role("button", name="Join", exact=True).click()
            expect(page.get_by_text("Signed in as")).to_be_visible()
            page.get_by_role("link", name="My progress").click()
            expect(page.get_by_role("heading", name="My progress")).to_be_visible()
            expect(page.get_by_test_id("stMetricValue").first).to_have_text("3")

            store = open_store(Workspace(workspace).database_url, upgrade=False)
            assert get_volunteer(store, "henrietta").role == "volunteer"
            assert len(volunteer_history(store, "henrietta")) == 3
            set_project_settings(store, None, join="invite")
            link = make_link(store, create_link(store, "adam", "invite"), "invite", url)
            store.dispose()
            time.sleep(10.5)  # a web process reads the project's settings at most every 10 s (app/common.settings)

            closed = visitor()
            expect(closed.get_by_role("heading", name="galaxalign", exact=True)).to_be_visible()
            expect(closed.get_by_text("Joining is by invitation")).to_be_visible()
            expect(closed.get_by_role("link", name="Join")).to_have_count(0)
            invited = visitor("/?" + link.split("?", 1)[1])
            expect(invited.get_by_text("You have been invited to join")).to_be_visible()
            invited.get_by_role("textbox", name="Name").fill("Annie-Cannon")
            invited.get_by_role("textbox", name="Password").fill("harvard-spectra-classifier")
            invited.get_by_role("button", name="Join", exact=True).click()
            expect(invited.get_by_text("Signed in as")).to_be_visible()
            again = visitor("/?" + link.split("?", 1)[1])
            expect(again.get_by_text(re.compile("already used"))).to_be_visible()
            expect(again.get_by_role("textbox", name="Name")).to_have_count(0)
        except Exception:
            failure_shots(browser, tmp_path)
            raise
        finally:
            browser.close()
    store = open_store(Workspace(workspace).database_url, upgrade=False)
    assert get_volunteer(store, "annie-cannon").role == "volunteer"
    store.dispose()


def test_single_sign_on_against_a_local_openid_provider_makes_a_volunteer(workspace, tmp_path):
    """st.login end to end: an OpenID Connect provider started here on loopback (oidc-provider-mock, an
    Authlib server), the app's secrets pointing at it; a new person signs in there and lands in the app
    as a new volunteer named from their e-mail."""
    from oidc_provider_mock import User, run_server_in_thread
    from playwright.sync_api import expect, sync_playwright

    from browser_flow import free_port
    from galaxalign.store import get_volunteer, open_store
    from galaxalign.workspace import Workspace

    port = free_port()
    person = User(sub="grace-hopper-1906", claims={"email": "grace.hopper@navy.example", "name": "Grace Hopper"})
    with run_server_in_thread(user_claims=[person]) as provider:
        site = tmp_path / "site"
        (site / ".streamlit").mkdir(parents=True)
        (site / ".streamlit" / "secrets.toml").write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            'cookie_secret = "a-long-random-test-cookie-secret-0123456789"\n'
            'client_id = "galaxalign-test"\nclient_secret = "not-a-secret"\n'
            f'server_metadata_url = "http://127.0.0.1:{provider.server_port}/.well-known/openid-configuration"\n')
        with streamlit_server(workspace, tmp_path / "streamlit.log", port=port, cwd=site) as url, \
                sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            expect.set_options(timeout=120_000)
            page = browser.new_page(viewport={"width": 1400, "height": 950})
            try:
                page.goto(f"{url}/signin")
                page.get_by_role("button", name="Sign in with your institution").click()
                expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()  # the provider's page
                page.get_by_role("button", name="grace-hopper-1906").click()
                expect(page.get_by_text("Signed in as")).to_be_visible()
                expect(page.get_by_role("heading", name="Classify", exact=True)).to_be_visible()
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                raise
            finally:
                browser.close()
    store = open_store(Workspace(workspace).database_url, upgrade=False)
    v = get_volunteer(store, "grace.hopper")
    store.dispose()
    assert v.role == "volunteer" and v.email == "grace.hopper@navy.example" and v.password_hash is None
