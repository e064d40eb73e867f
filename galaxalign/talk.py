"""Talk: what a volunteer writes about a galaxy, rendered so that it can never act as markup.

A comment is Markdown (CommonMark: emphasis, lists, quotes, code, links). It is turned into HTML by
markdown-it with raw HTML switched off — ``<script>`` in a comment is text, shown as typed — and then
cleaned by nh3 (the Rust ``ammonia`` sanitiser) to a short list of tags and attributes, links only to
``http``, ``https`` and ``mailto`` (a relative or empty link loses its target: nothing points into the
app) and always ``rel="nofollow noopener noreferrer ugc"``. Two layers:
a mistake in one is caught by the other.

``#hashtags`` collect galaxies under a tag (stored lower-case); ``@name`` mentions a volunteer who
exists. Both are found by the same inline rule that renders them, so what is stored and what is shown
never disagree (a tag inside a code span is not a tag).

>>> parse("A #Ring with a lens arc? @ada look #ring")
Parsed(tags=('ring',), mentions=('ada',))
>>> "script" in render("<script>alert(1)</script>") and "<script" not in render("<script>alert(1)</script>")
True
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from html import escape

__all__ = ["MAX_COMMENT", "TAG_RE", "MENTION_RE", "Parsed", "parse", "render"]

MAX_COMMENT = 5000  # characters
# a tag or a name after '#' / '@', not glued to a word before it (an e-mail address, "C#", a URL anchor)
TAG_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{1,39}")
MENTION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,39}")  # galaxalign.validate.NAME_RE
_GLUED = re.compile(r"[\w&#@/.:-]")
# what survives cleaning: text structure, code, quotes, lists, links, and our tag/mention spans
_TAGS = {"p", "br", "em", "strong", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a", "span", "hr",
         "h1", "h2", "h3", "h4", "h5", "h6"}
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}  # span classes: _CLASSES
_CLASSES = {"span": {"ga-tag", "ga-mention"}}
_SCHEMES = {"http", "https", "mailto"}
_REL = "nofollow noopener noreferrer ugc"


@dataclass(frozen=True)
class Parsed:
    """The tags (lower-case) and the mentioned names of a comment, each once, in order of appearance."""
    tags: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()


def _marker_rule(char: str, body: re.Pattern, kind: str):
    def rule(state, silent: bool) -> bool:
        pos = state.pos
        if state.src[pos] != char or (pos > 0 and _GLUED.match(state.src[pos - 1])):
            return False
        m = body.match(state.src, pos + 1)
        if m is None:
            return False
        if not silent:
            tok = state.push(kind, "", 0)
            tok.content = m.group(0)
        state.pos = m.end()
        return True
    return rule


@lru_cache(maxsize=1)
def _md():
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False})
    md.enable("linkify").enable("strikethrough").disable("image")  # no pictures from elsewhere in a thread
    md.inline.ruler.before("emphasis", "ga_tag", _marker_rule("#", TAG_RE, "ga_tag"))
    md.inline.ruler.before("emphasis", "ga_mention", _marker_rule("@", MENTION_RE, "ga_mention"))
    md.add_render_rule("ga_tag", lambda self, tokens, idx, options, env:
                       f'<span class="ga-tag">#{escape(tokens[idx].content.lower())}</span>')

    def mention(self, tokens, idx, options, env) -> str:
        name = tokens[idx].content
        known = env.get("names")
        if known is not None and name.lower() not in known:
            return "@" + escape(name)  # nobody of that name: plain text
        return f'<span class="ga-mention">@{escape(name)}</span>'
    md.add_render_rule("ga_mention", mention)
    return md


def _tokens(text: str):
    for block in _md().parse(text):
        for tok in block.children or ():
            yield tok


def _check(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"a comment is text, not {type(text).__name__}")
    return text


def parse(text: str) -> Parsed:
    """The tags and mentions a comment's text carries (see the module docstring)."""
    tags, names = {}, {}
    for tok in _tokens(_check(text)):
        if tok.type == "ga_tag":
            tags.setdefault(tok.content.lower(), None)
        elif tok.type == "ga_mention":
            names.setdefault(tok.content.lower(), tok.content)
    return Parsed(tuple(tags), tuple(names.values()))


def render(text: str, names: set[str] | None = None) -> str:
    """Safe HTML for a comment. ``names`` (lower-case): the volunteers who exist — an ``@name`` outside it
    stays plain text; ``None`` marks every mention."""
    import nh3

    html = _md().render(_check(text), {"names": names})
    return nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, allowed_classes=_CLASSES, url_schemes=_SCHEMES,
                     url_relative="deny", link_rel=_REL, strip_comments=True)
