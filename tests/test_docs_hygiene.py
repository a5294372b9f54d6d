"""The documentation and the sources read as a description of what netscale is.

No tracker references (``#`` followed by a number) and none of the words that point at how
the work was organised, in the README, the changelog, docs/, src/, tests/ and benchmarks/;
every page of docs/ is listed in docs/index.md; every relative link in the README, the
changelog and docs/ resolves, anchors included (GitHub's heading slugs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCANNED_FILES = ("README.md", "CHANGELOG.md")
SCANNED_DIRS = ("docs", "src", "tests", "benchmarks")
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}

WORDS = re.compile(r"\b(?:issues?|leftovers?)\b", re.IGNORECASE)
# `#12` (a tracker number), but not a colour (`#1f77b4`, `#333333`, `color:#222;`), an HTML
# entity (`&#8212;`), or part of a word, a path or a quoted value; at most 5 digits.
TRACKER_REF = re.compile(r"(?<![\w&#/:'\"=])#\d{1,5}(?![\w;])")
# URLs may legitimately contain the words (a repository's tracker or a comment anchor).
URL = re.compile(r"\bhttps?://\S+")


def scanned_paths() -> Iterator[Path]:
    """Every file scanned, except this one (its examples must contain what it looks for)."""
    for name in SCANNED_FILES:
        if (ROOT / name).is_file():
            yield ROOT / name
    for d in SCANNED_DIRS:
        for p in sorted((ROOT / d).rglob("*")):
            parts = p.relative_to(ROOT).parts
            if (p.is_file() and p != Path(__file__).resolve()
                    and not SKIPPED_DIRS & set(parts)
                    and not any(part.endswith(".egg-info") for part in parts)):
                yield p


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # images, checkpoints: not text


def offences(text: str) -> list[str]:
    """``line: excerpt`` of every tracker reference or forbidden word in ``text``."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        plain = URL.sub("", line)
        for m in [*WORDS.finditer(plain), *TRACKER_REF.finditer(plain)]:
            out.append(f"{n}: {plain[max(0, m.start() - 30):m.end() + 30].strip()}")
    return out


@pytest.mark.parametrize("text, found", [
    ("see #12 for details", True),
    ("fixed in PR #3.", True),
    ("an Issue with it", True),
    ("the issues list", True),
    ("LEFTOVERS: two", True),
    ("a leftover field", True),
    ("color: #1f77b4; background: #333333", False),
    ("a{color:#222;margin:0} td{color: #888;}", False),
    ("an em dash &#8212; here", False),
    ("https://github.com/o/r/issues/12#issuecomment-1", False),
    ("index.html#sort=acts and ## 2 headings", False),
    ("tissue and reissued text", False),
])
def test_the_rule_finds_references_and_words_but_not_colours_or_urls(text: str,
                                                                     found: bool) -> None:
    assert bool(offences(text)) is found


def test_no_tracker_references_or_process_words() -> None:
    bad = []
    for path in scanned_paths():
        text = text_of(path)
        if text is None:
            continue
        bad += [f"{path.relative_to(ROOT)}:{o}" for o in offences(text)]
    assert not bad, "describe what is, without tracker numbers:\n" + "\n".join(bad)


# ------------------------------------------------------------------------------------------
# links
# ------------------------------------------------------------------------------------------

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def prose(text: str) -> str:
    """``text`` without fenced code blocks (their links and headings are not real)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    s = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    s = re.sub(r"[^\w\- ]", "", s.lower())
    return s.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for h in HEADING.findall(prose(path.read_text(encoding="utf-8"))):
        s = slug(h)
        out.add(f"{s}-{seen[s]}" if s in seen else s)
        seen[s] = seen.get(s, 0) + 1
    return out


def markdown_files() -> list[Path]:
    return [p for p in (ROOT / "README.md", ROOT / "CHANGELOG.md") if p.is_file()] + sorted(
        DOCS.glob("*.md"))


def links(path: Path) -> list[str]:
    return LINK.findall(INLINE_CODE.sub("", prose(path.read_text(encoding="utf-8"))))


def test_slugs_follow_github() -> None:
    assert slug("Memory format and precision: the fastest correct setting, measured") == (
        "memory-format-and-precision-the-fastest-correct-setting-measured")
    assert slug("`netscale bench --fit --from FILE`") == "netscale-bench---fit---from-file"
    assert slug("The quickstart's verdict, replicated (measured)") == (
        "the-quickstarts-verdict-replicated-measured")


def test_every_relative_link_resolves() -> None:
    bad = []
    for md in markdown_files():
        for target in links(md):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            file_part, _, anchor = target.partition("#")
            dest = (md.parent / file_part).resolve() if file_part else md
            where = f"{md.relative_to(ROOT)} -> {target}"
            if not dest.exists():
                bad.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{where}: no heading with that anchor")
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_every_docs_page_is_listed_in_the_index() -> None:
    index = DOCS / "index.md"
    listed = {(DOCS / t.partition("#")[0]).resolve() for t in links(index)}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p != index and p.resolve()
               not in listed]
    assert not missing, f"docs pages not linked from docs/index.md: {missing}"
