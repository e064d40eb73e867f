"""Talk: comments rendered so that nothing a volunteer writes acts as markup; threads, #tags and @mentions
in the store (SQLite and PostgreSQL); rate limits, suspension, moderation and its log; the export."""
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from galaxalign.data import load_survey
from galaxalign.store import (RATE_LIMITS, AccessDenied, StoreError, TalkRateLimited, add_volunteer, export_comments,
                              galaxies_tagged, galaxy_comments, mentions_of, moderate_comment, moderation_log,
                              post_comment, recent_comments, register_survey, suspend_from_talk, tag_counts,
                              volunteer_comments)
from galaxalign.store.models import utcnow
from galaxalign.talk import MAX_COMMENT, parse, render

HOSTILE = ["<script>alert('x')</script>",
           '<img src=x onerror="alert(1)">',
           "[click me](javascript:alert(1))",
           "[click me](JaVaScRiPt:alert(1))",
           "[click me](&#106;avascript:alert(1))",
           '<a href="javascript:alert(1)">link</a>',
           "<iframe src=https://evil.example></iframe>",
           "![x](javascript:alert(1))",
           '<svg onload=alert(1)>', "<style>body{display:none}</style>",
           "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
           '<span class="ga-tag" onclick="alert(1)">#fake</span>',
           "[](", "[]()", "[home](/admin)", "[x](?page=admin)", "[x](//evil.example/a)"]  # no link into the app
ALLOWED = {"p", "br", "em", "strong", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a", "span", "hr",
           "h1", "h2", "h3", "h4", "h5", "h6"}


class Audit(HTMLParser):
    """Every element and attribute in rendered HTML, to check against what may pass."""

    def __init__(self):
        super().__init__()
        self.problems = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED:
            self.problems.append(f"tag {tag}")
        for k, v in attrs:
            if k.startswith("on") or k in ("style", "src", "srcdoc"):
                self.problems.append(f"attribute {k}")
            if k == "href" and not (v or "").lower().startswith(("http://", "https://", "mailto:")):
                self.problems.append(f"href {v}")
        if tag == "a" and "nofollow" not in dict(attrs).get("rel", ""):
            self.problems.append("a link without rel=nofollow")
        if tag == "span" and dict(attrs).get("class") not in ("ga-tag", "ga-mention"):
            self.problems.append(f"span class {dict(attrs).get('class')}")


def audit(html: str) -> list[str]:
    a = Audit()
    a.feed(html)
    return a.problems


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_comments_render_as_inert_text(text):
    html = render(text)
    assert audit(html) == []  # only allowed elements; no handler, style or source; links only http(s)/mailto
    assert not any(f"<{t}" in html.lower() for t in ("script", "img", "iframe", "svg", "style"))


def test_what_a_volunteer_typed_is_shown_as_typed():
    html = render("<script>alert('x')</script>")
    assert html == "<p>&lt;script&gt;alert('x')&lt;/script&gt;</p>\n"  # visible, escaped, not run


def test_markdown_tags_mentions_and_links():
    html = render("A **ring** with an arc? #Lens #ring cc @ada and @nobody, see https://example.org", names={"ada"})
    assert "<strong>ring</strong>" in html
    assert '<span class="ga-tag">#lens</span>' in html and '<span class="ga-tag">#ring</span>' in html
    assert '<span class="ga-mention">@ada</span>' in html and "@nobody" in html and ">@nobody<" not in html
    assert '<a href="https://example.org" rel="nofollow noopener noreferrer ugc">' in html
    assert parse("#Lens and #lens, `#code` C# a@b.org x#y @ada @Ada") == parse("#lens @ada")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=40), st.sampled_from(HOSTILE + ["#tag", "@ada", "[a](", "](", "<", ">", "`",
                                                                          "\n\n", "*", "&#", "javascript:", "\"'"])),
                max_size=8))
def test_no_text_renders_to_markup_that_acts(parts):
    assert audit(render("".join(parts))) == []


@pytest.fixture
def talk(store, synth_h5):
    survey = load_survey(synth_h5)
    register_survey(store, survey, "demo")
    for name, role in (("ada", "volunteer"), ("bob", "volunteer"), ("root", "admin")):
        add_volunteer(store, name, role, None)
    return survey.id_str


def test_threads_tags_and_mentions(store, talk):
    t0 = utcnow() - timedelta(hours=2)
    c1 = post_comment(store, "ada", talk[0], "Is this a #ring? @bob what do you think", now=t0)
    post_comment(store, "bob", talk[0], "Looks like a #Ring to me, and a #lens arc", now=t0 + timedelta(minutes=1))
    post_comment(store, "bob", talk[3], "Another #ring here", now=t0 + timedelta(minutes=2))
    thread = galaxy_comments(store, talk[0])
    assert list(thread.volunteer) == ["ada", "bob"] and thread.comment_id[0] == c1  # oldest first
    tags = tag_counts(store).set_index("tag")
    assert (tags.loc["ring", "galaxies"], tags.loc["ring", "comments"], tags.loc["lens", "galaxies"]) == (2, 3, 1)
    assert list(galaxies_tagged(store, "#RING").id_str) == [talk[3], talk[0]]  # most recently tagged first
    assert list(mentions_of(store, "bob").comment_id) == [c1] and mentions_of(store, "ada").empty
    assert list(recent_comments(store, limit=2).id_str) == [talk[3], talk[0]]
    assert list(volunteer_comments(store, "bob").id_str) == [talk[3], talk[0]]


def test_rate_limit_suspension_and_refusals_write_nothing(store, talk):
    now = utcnow()
    n, window = RATE_LIMITS[0]
    for k in range(n):
        post_comment(store, "ada", talk[k], f"comment {k}", now=now + timedelta(seconds=k))
    with pytest.raises(TalkRateLimited, match=r"volunteer 'ada' posted 5 comments in the last minute; wait \d+ s"):
        post_comment(store, "ada", talk[0], "one more", now=now + timedelta(seconds=n))
    post_comment(store, "ada", talk[0], "later", now=now + timedelta(seconds=window + 1))  # the window moved on
    for k in range(n + 1):  # a moderator is not limited
        post_comment(store, "root", talk[1], f"note {k}", now=now + timedelta(seconds=k))
    for args, err, msg in (((talk[0], "   "), StoreError, "the comment is empty"),
                           ((talk[0], "x" * (MAX_COMMENT + 1)), StoreError, f"at most {MAX_COMMENT}"),
                           ((talk[0], 42), StoreError, "a comment is text, not int"),
                           (("no-such-galaxy", "hello"), StoreError, "galaxy 'no-such-galaxy' does not exist")):
        with pytest.raises(err, match=msg):
            post_comment(store, "bob", *args)
    suspend_from_talk(store, "root", "bob", reason="spam")
    with pytest.raises(AccessDenied, match="volunteer 'bob' is suspended from Talk"):
        post_comment(store, "bob", talk[0], "hello")
    with pytest.raises(AccessDenied, match="needs an admin"):
        suspend_from_talk(store, "ada", "bob", on=False)
    with pytest.raises(StoreError, match="admins are not suspended"):
        suspend_from_talk(store, "root", "root")
    assert volunteer_comments(store, "bob").empty
    suspend_from_talk(store, "root", "bob", on=False)
    post_comment(store, "bob", talk[0], "back again")
    assert list(moderation_log(store).action) == ["unsuspend", "suspend"]


def test_moderation_hides_deletes_and_logs(store, talk):
    bad = post_comment(store, "bob", talk[0], "<script>alert(1)</script> #spam")
    good = post_comment(store, "ada", talk[0], "A fine #ring")
    with pytest.raises(AccessDenied):
        moderate_comment(store, "ada", bad, "hide")
    moderate_comment(store, "root", bad, "hide", reason="script")
    assert list(galaxy_comments(store, talk[0]).comment_id) == [good]  # gone for volunteers
    mod_view = galaxy_comments(store, talk[0], include_hidden=True)
    assert list(mod_view.comment_id) == [bad, good] and list(mod_view.hidden) == [True, False]
    assert "spam" not in set(tag_counts(store).tag)  # a hidden comment's tags collect nothing
    moderate_comment(store, "root", bad, "unhide")
    assert "spam" in set(tag_counts(store).tag)
    moderate_comment(store, "root", bad, "delete", reason="hostile")
    assert list(galaxy_comments(store, talk[0], include_hidden=True).comment_id) == [good]
    assert "spam" not in set(tag_counts(store).tag)
    log = moderation_log(store)
    assert list(log.action) == ["delete", "unhide", "hide"] and set(log.moderator) == {"root"}
    assert log.body[0].startswith("<script>") and log.comment_id[0] == bad and log.volunteer[0] == "bob"
    for args, msg in (((bad, "delete"), f"comment {bad} does not exist"), ((good, "burn"), "must be one of hide")):
        with pytest.raises(StoreError, match=msg):
            moderate_comment(store, "root", *args)
    assert len(moderation_log(store)) == 3


def test_comments_are_exported_with_volunteer_time_tags_and_state(store, talk):
    a = post_comment(store, "ada", talk[0], "A #ring and a #lens")
    b = post_comment(store, "bob", talk[1], "nothing to see")
    moderate_comment(store, "root", b, "hide")
    out = export_comments(store, "demo")
    assert list(out.comment_id) == [a, b] and list(out.volunteer) == ["ada", "bob"]
    assert list(out.tags) == ["lens ring", ""] and list(out.hidden) == [False, True]
    assert out.created_at.notna().all() and out.body[0] == "A #ring and a #lens"
