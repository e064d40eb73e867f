"""README screenshots from the demo workspace (run `make demo` first): the same walk-through as the
browser test, in Debian's Chromium, on a copy of the workspace (the real one keeps no bench votes).

    python bench/screenshots.py                 # writes docs/screenshots/*.png
    python bench/screenshots.py --survey first  # the FIRST workspace (`make demo SURVEY=first`):
                                                # docs/screenshots/classify_first.png
    python bench/screenshots.py --phone         # docs/screenshots/classify_phone.png (390×844)
    python bench/screenshots.py --talk          # docs/screenshots/talk_thread.png (a thread, as an admin)
    python bench/screenshots.py --adapt         # the demo's starter adapted to 800 classic-sky galaxies
                                                # (rendered and imported into a copy of the workspace):
                                                # docs/screenshots/admin_adapt.png, its domain AUC
    python bench/screenshots.py --doors         # the public's way in, on a copy of the demo with a day of
                                                # simulated volunteers: home.png, guest_classify.png,
                                                # join.png, people.png
    python bench/screenshots.py --loop          # the science loop, on the workspace that
                                                # `python bench/campaign.py --keep anchoring_0.6` kept:
                                                # docs/screenshots/admin_anchoring.png, hunt_grid.png
"""
import argparse
import importlib.util
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _browser_flow():
    """The browser walk the tests use (tests/browser_flow.py), loaded from its file: one walk for both."""
    spec = importlib.util.spec_from_file_location("browser_flow", ROOT / "tests" / "browser_flow.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_flow = _browser_flow()
CHROMIUM, CHROMIUM_ARGS, streamlit_server, walk_through = (_flow.CHROMIUM, _flow.CHROMIUM_ARGS,
                                                          _flow.streamlit_server, _flow.walk_through)


@contextmanager
def signed_in(url: str, password: str, **page_options):
    """A Chromium page signed in as ``admin`` (expect's timeout raised for a loaded 2-core machine)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=120_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(**page_options)
        page.goto(f"{url}/signin")
        page.get_by_role("textbox", name="Name").fill("admin")
        page.get_by_role("textbox", name="Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        try:
            yield page, expect
        finally:
            browser.close()


def first_classify(url: str, password: str, out: Path) -> None:
    """Sign in to the FIRST workspace and photograph the Classify page: a real radio galaxy, the radio
    symbols with their help, the model's proposal."""
    with signed_in(url, password, viewport={"width": 1400, "height": 900}) as (page, expect):
        expect(page.get_by_role("heading", name="What kind of radio source is this?")).to_be_visible()
        expect(page.get_by_text("Model proposal:")).to_be_visible()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "classify_first.png"))


def phone_classify(url: str, password: str, out: Path) -> None:
    """The Classify page on a 390×844 phone screen, after the first-visit tutorial: what fits without
    scrolling."""
    with signed_in(url, password, viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                   has_touch=True) as (page, expect):
        start = page.get_by_role("button", name="Start classifying")  # a new account: the tutorial first
        expect(start).to_be_visible()
        start.click()
        expect(start).to_have_count(0)
        expect(page.get_by_role("heading", name="Is the galaxy simply smooth and rounded, with no sign of a disk?")
               ).to_be_visible()
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out / "classify_phone.png"))


TALK = [("ada", "Is that a faint **ring** around the bulge? #ring"),
        ("bob", "@ada I see it too, and maybe an arc to the upper left. #ring #lens"),
        ("mallory", "<script>alert('hi')</script> <img src=x onerror=alert(1)> [free prize](javascript:alert(2))")]


def _talk_store(ws: Path):
    """Three volunteers discuss the galaxy Classify shows the admin first; the third comment is hostile."""
    from galaxalign.store import add_volunteer, open_store

    store = open_store(f"sqlite:///{ws / 'galaxalign.db'}")
    for name in sorted({n for n, _ in TALK}):
        add_volunteer(store, name, "volunteer", None)
    return store


def talk_thread(url: str, password: str, out: Path, store) -> None:
    """A Talk thread as an admin sees it: tags, a mention, a hostile comment shown as the text typed, and
    the moderation buttons."""
    from galaxalign.store import post_comment

    import numpy as np

    from galaxalign.data import load_survey
    from galaxalign.store import list_surveys

    survey = load_survey(list_surveys(store)[0].path)  # its first barred spiral (Galaxy10 class 5)
    gid = str(survey.id_str[int(np.flatnonzero(survey.labels == 5)[0])])
    for name, body in TALK:
        post_comment(store, name, gid, body)
    with signed_in(url, password, viewport={"width": 1400, "height": 1000}) as (page, expect):
        page.get_by_role("link", name="Talk").click()
        page.locator(".st-key-talk_view").get_by_text("Thread", exact=True).click()
        page.get_by_label("Galaxy").fill(gid)
        page.get_by_label("Galaxy").press("Enter")
        expect(page.locator(".ga-comment", has_text="alert('hi')")).to_be_visible()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "talk_thread.png"), full_page=True)


def admin_section(page, expect, heading: str, wait_for, path: Path) -> None:
    """Open the Admin page, wait for ``wait_for`` to show, scroll ``heading`` to the top, photograph."""
    page.get_by_role("link", name="Admin").click()
    head = page.get_by_role("heading", name=heading)
    expect(head).to_be_visible()
    expect(wait_for).to_be_visible()
    page.wait_for_timeout(2000)
    head.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(1000)
    page.screenshot(path=str(path))


def loop_pages(url: str, password: str, out: Path) -> None:
    """The Admin page's anchoring control and retirement rule after a simulated campaign, and a hunt's
    grid worked from the keyboard (→ → Space ↓ Space)."""
    with signed_in(url, password, viewport={"width": 1400, "height": 1000}) as (page, expect):
        admin_section(page, expect, "Anchoring control", page.get_by_text("Anchoring", exact=True).first,
                      out / "admin_anchoring.png")
        page.get_by_role("link", name="Hunt").click()
        expect(page.get_by_role("heading", name="Hunt")).to_be_visible()
        expect(page.get_by_text("Send these 24 decisions")).to_be_visible()
        page.wait_for_timeout(1500)
        for key in ("ArrowRight", "ArrowRight", "Space", "ArrowDown", "Space"):
            page.keyboard.press(key)
            page.wait_for_timeout(900)
        page.screenshot(path=str(out / "hunt_grid.png"), full_page=True)


def admin_adapt(url: str, password: str, out: Path) -> None:
    """The Admin page's model versions with the adaptation and its domain AUC before and after."""
    with signed_in(url, password, viewport={"width": 1400, "height": 1000}) as (page, expect):
        admin_section(page, expect, "Model versions", page.get_by_text("Adaptations").first, out / "admin_adapt.png")


def _adapt_workspace(ws: Path, n: int = 800) -> dict:
    """Render ``n`` classic-sky galaxies, import them as ``classic-sky`` and adapt the active model to
    them (align ot), as `galaxalign import` and `galaxalign adapt --wait` would; the job's result."""
    from galaxalign.importer import import_path
    from galaxalign.jobs import adapt
    from galaxalign.store import open_store
    from galaxalign.synth import synth_survey
    from galaxalign.workspace import Workspace

    workspace = Workspace(ws)
    store = open_store(workspace.database_url)
    src = ws / "classic-sky.h5"
    synth_survey(src, n=n, size=64, seed=22, sky="classic", progress=False)
    import_path(store, workspace, src, "classic-sky", workflow="flat", progress=False)
    res = adapt(store, workspace, None, {"survey": "classic-sky", "align": "ot"}, show_bar=True)
    store.dispose()
    return res


def _loop_workspace(src: Path, ws: Path) -> str:
    """Copy the kept campaign workspace, add an admin and a hunt for cigar-shaped galaxies; the password."""
    from galaxalign.store import add_volunteer, create_hunt, open_store, relocate_paths

    shutil.copytree(src, ws)
    store = open_store(f"sqlite:///{ws / 'galaxalign.db'}")
    relocate_paths(store, str(src), str(ws))
    add_volunteer(store, "admin", "admin", "screenshot-admin")
    create_hunt(store, "sim", "cigars", {"text": "A picture of a cigar shaped smooth galaxy", "target_class": 4})
    store.dispose()
    return "screenshot-admin"


def _busy_project(ws: Path, n_volunteers: int = 24, seed: int = 0) -> None:
    """A project a few days into its life: volunteers (some guests) who voted the galaxies' true classes
    most of the time, over the last five days, with favourites — so the home page has figures to show."""
    from datetime import timedelta

    import numpy as np
    from sqlalchemy import select, update

    from galaxalign.data import load_survey
    from galaxalign.store import (add_volunteer, create_guest, next_galaxy_for, open_store, record_classification,
                                  set_flag)
    from galaxalign.store.models import Classification, utcnow
    from galaxalign.taxonomy import get_label_set

    rng = np.random.default_rng(seed)
    store = open_store(f"sqlite:///{ws / 'galaxalign.db'}")
    survey = load_survey(ws / "surveys" / "demo.h5")
    ls = get_label_set("galaxy10")
    truth = dict(zip(survey.id_str.astype(str), survey.labels))
    people = []
    for k in range(n_volunteers):
        if k % 4 == 3:
            people.append(create_guest(store)[0])
        else:
            people.append(add_volunteer(store, f"{['ada', 'vera', 'henrietta', 'cecilia', 'annie', 'williamina'][k % 6]}"
                                               f"{k}", "volunteer", None))
    for rnd in range(14):
        for vid in people:
            g = next_galaxy_for(store, vid, "demo", rng=rng)
            if g is None:
                continue
            c = int(truth[g.id_str]) if rng.random() < 0.8 else int(rng.integers(0, 10))
            record_classification(store, vid, g.id, [list(p) for p in ls[c].path], seconds=float(rng.uniform(4, 20)))
            if rng.random() < 0.04:
                set_flag(store, vid, g.id, "favourite")

    def spread(s):  # the votes over the last five days, more each day
        now = utcnow()
        for i in list(s.scalars(select(Classification.id))):
            s.execute(update(Classification).where(Classification.id == i).values(
                created_at=now - timedelta(hours=float(rng.uniform(0, 1) ** 1.7 * 110))))
    store.write(spread)
    store.dispose()


def doors_pages(url: str, password: str, out: Path) -> None:
    """The public's way in: the home page, classifying as a guest, the Join form; then People as an admin."""
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=120_000)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 950})
        page.goto(url)
        expect(page.get_by_text("galaxies retired")).to_be_visible()
        page.wait_for_timeout(2500)
        page.screenshot(path=str(out / "home.png"), full_page=True)
        page.get_by_role("button", name="Start classifying").click()
        expect(page.get_by_role("heading", name="How classifying works")).to_be_visible()
        page.get_by_role("button", name="Start classifying").click()  # the tutorial, dismissed
        expect(page.get_by_role("heading", name="How classifying works")).to_have_count(0)
        expect(page.get_by_role("heading", name="Is the galaxy simply smooth and rounded, with no sign of a disk?")
               ).to_be_visible()
        page.locator(".st-key-ans_t01_smooth button").first.click()
        expect(page.get_by_role("heading", name="How rounded is it?")).to_be_visible()
        page.locator(".st-key-ans_t07_round button").first.click()
        expect(page.get_by_role("heading", name="Is there anything odd?")).to_be_visible()
        page.locator(".st-key-ans_t06_no button").first.click()
        expect(page.get_by_text("Classifying as guest")).to_be_visible()
        page.wait_for_timeout(1500)
        page.screenshot(path=str(out / "guest_classify.png"))
        page.get_by_role("link", name="Join").click()
        page.get_by_role("textbox", name="Name").fill("Henrietta-Leavitt")
        page.get_by_role("textbox", name="Password").fill("cepheid-period-luminosity")
        page.get_by_role("textbox", name="E-mail (optional)").fill("henrietta@example.org")
        page.wait_for_timeout(800)
        page.screenshot(path=str(out / "join.png"))
        admin = browser.new_page(viewport={"width": 1400, "height": 950})
        admin.goto(f"{url}/signin")
        admin.get_by_role("textbox", name="Name").fill("admin")
        admin.get_by_role("textbox", name="Password").fill(password)
        admin.get_by_role("button", name="Sign in").click()
        admin.get_by_role("link", name="People").click()
        admin.get_by_role("tab", name="Accounts").click()
        expect(admin.get_by_role("button", name="Change role")).to_be_visible()
        admin.wait_for_timeout(2000)
        admin.screenshot(path=str(out / "people.png"), full_page=True)
        browser.close()


def hxdf_classify(url: str, password: str, out: Path, tries: int = 40) -> None:
    """Classify on a real galaxy of the Hubble eXtreme Deep Field; skips (S) until one whose proposal the
    gate shows, and says so when none of ``tries`` has one."""
    with signed_in(url, password, viewport={"width": 1400, "height": 900}) as (page, expect):
        heading = page.get_by_role("heading", name="Is the galaxy simply smooth and rounded, with no sign of a disk?")
        for k in range(tries):
            expect(heading).to_be_visible()
            page.wait_for_timeout(1500)
            if page.get_by_text("Model proposal:").count():
                break
            page.get_by_role("button", name="Skip this galaxy").click()
        else:
            print(f"none of {tries} HXDF galaxies had a proposal the gate shows; photographed the last")
        page.screenshot(path=str(out / "classify_hxdf.png"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--survey", default="demo", choices=["demo", "first", "hxdf"])
    ap.add_argument("--loop", action="store_true", help="the anchoring panel and a hunt, from a kept campaign")
    ap.add_argument("--adapt", action="store_true", help="the Admin page after adapting to the classic sky")
    ap.add_argument("--phone", action="store_true", help="only the Classify page on a 390×844 phone screen")
    ap.add_argument("--talk", action="store_true", help="only a Talk thread, with a hostile comment, as an admin")
    ap.add_argument("--doors", action="store_true", help="home, guest classification, Join and People")
    a = ap.parse_args()
    out = ROOT / "docs" / "screenshots"
    if a.loop:
        with tempfile.TemporaryDirectory() as tmp:
            ws = Path(tmp) / "ws"
            password = _loop_workspace(ROOT / "bench" / "out" / "campaign" / "ws-sky-anchoring_0.6-0", ws)
            with streamlit_server(ws, Path(tmp) / "streamlit.log") as url:
                loop_pages(url, password, out)
        print(f"wrote {out}/admin_anchoring.png, {out}/hunt_grid.png")
        return
    src = ROOT / ("workspace" if a.survey == "demo" else f"workspace-{a.survey}")
    password = (src / "admin-password.txt").read_text().strip()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        shutil.copytree(src, ws)
        from galaxalign.store import open_store, relocate_paths

        store = open_store(f"sqlite:///{ws / 'galaxalign.db'}")
        relocate_paths(store, str(src), str(ws))
        store.dispose()
        if a.doors:
            _busy_project(ws)
        if a.adapt:
            res = _adapt_workspace(ws)
            print(f"adapted {res['model']}: domain AUC {res['domain_auc_before']} -> {res['domain_auc_after']}")
        with streamlit_server(ws, Path(tmp) / "streamlit.log") as url:
            if a.adapt:
                out.mkdir(parents=True, exist_ok=True)
                admin_adapt(url, password, out)
            elif a.phone:
                out.mkdir(parents=True, exist_ok=True)
                phone_classify(url, password, out)
            elif a.doors:
                doors_pages(url, password, out)
            elif a.talk:
                store = _talk_store(ws)
                talk_thread(url, password, out, store)
                store.dispose()
            elif a.survey == "demo":
                walk_through(url, "admin", password, out, n_votes=5)
            elif a.survey == "hxdf":
                out.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / "hxdf-preview.png", out / "hxdf_field.png")
                hxdf_classify(url, password, out)
            else:
                out.mkdir(parents=True, exist_ok=True)
                first_classify(url, password, out)
    print(f"wrote {out}/")


if __name__ == "__main__":
    main()
