"""The UI text lives in the gettext catalogs: none hard-coded, every msgid translated."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from mixwise.web.i18n import LANGUAGES, load_translations, po_path
from mixwise.web.templating import TEMPLATES_DIR

WEB_DIR = TEMPLATES_DIR.parent
KEYWORDS = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2)}
TEMPLATES = sorted(TEMPLATES_DIR.glob("*.html"))
JINJA_BLOCKS = re.compile(
    r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}|{{.*?}}|{%.*?%}|{#.*?#}", re.DOTALL
)
# Attributes whose values people see (or hear, with a screen reader).
VISIBLE_ATTRS = {"title", "placeholder", "alt", "aria-label", "label"}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class VisibleText(HTMLParser):
    """Collects text nodes and visible attribute values, except in script and style."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in VISIBLE_ATTRS and value:
                self.found.append(value)
            if (
                tag == "input"
                and name == "value"
                and dict(attrs).get("type") in ("submit", "button")
            ):
                self.found.append(value or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.found.append(data)


def used_msgids() -> dict[str, str]:
    """msgid → where it is used, from the templates and the web package's Python code."""
    ids: dict[str, str] = {}
    options = {"extensions": "jinja2.ext.i18n", "trimmed": "true"}
    for path in TEMPLATES:
        for lineno, msg, _c, _ctx in extract_from_file(
            "jinja2", str(path), keywords=KEYWORDS, options=options
        ):
            ids.setdefault(msg if isinstance(msg, str) else msg[0], f"{path.name}:{lineno}")
    for path in sorted(WEB_DIR.glob("*.py")):
        for lineno, msg, _c, _ctx in extract_from_file("python", str(path), keywords=KEYWORDS):
            ids.setdefault(msg if isinstance(msg, str) else msg[0], f"{path.name}:{lineno}")
    return ids


def catalog(lang: str) -> dict[str, str]:
    with po_path(lang).open("rb") as fh:
        cat = read_po(fh, locale=lang)
    return {str(m.id): str(m.string) for m in cat if m.id}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_no_hard_coded_text_in_templates(template: Path) -> None:
    source = JINJA_BLOCKS.sub(" ", template.read_text(encoding="utf-8"))
    parser = VisibleText()
    parser.feed(source)
    parser.close()
    offending = [t.strip() for t in parser.found if re.search(r"[^\W\d_]", t)]
    assert not offending, f"{template.name}: text outside gettext: {offending}"


def test_the_check_catches_hard_coded_text() -> None:
    parser = VisibleText()
    parser.feed(JINJA_BLOCKS.sub(" ", '<p>{{ _("ok") }} Hello</p><input placeholder="Type">'))
    assert [t.strip() for t in parser.found if t.strip()] == ["Hello", "Type"]


def test_every_msgid_is_translated_to_chinese() -> None:
    used = used_msgids()
    assert len(used) > 50
    zh = catalog("zh_CN")
    missing = {m: where for m, where in used.items() if not zh.get(m)}
    assert not missing, f"msgids without a zh_CN translation: {missing}"
    bad = {
        m: zh[m]
        for m in used
        if sorted(PLACEHOLDER.findall(m)) != sorted(PLACEHOLDER.findall(zh[m]))
    }
    assert not bad, f"translations whose %(name)s placeholders differ: {bad}"


def test_every_template_translation_survives_percent_formatting() -> None:
    """Jinja's gettext %-formats every message of a template (with or without variables), so
    a bare ``%`` in a translation ("90% 区间") breaks the page: write ``％`` or ``%%``.
    (Messages used only in Python, such as chart labels, are not formatted.)"""
    from collections import defaultdict

    options = {"extensions": "jinja2.ext.i18n", "trimmed": "true"}
    in_templates = {
        msg if isinstance(msg, str) else msg[0]
        for path in TEMPLATES
        for _l, msg, _c, _ctx in extract_from_file(
            "jinja2", str(path), keywords=KEYWORDS, options=options
        )
    }
    broken = {}
    for lang in LANGUAGES:
        for msgid, text in catalog(lang).items():
            if msgid not in in_templates:
                continue
            try:
                (text or msgid) % defaultdict(str)
            except (ValueError, TypeError) as exc:
                broken[(lang, msgid)] = str(exc)
    assert not broken, broken


def test_catalogs_list_the_same_msgids_and_no_stale_ones() -> None:
    used = set(used_msgids())
    for lang in LANGUAGES:
        assert set(catalog(lang)) == used, lang


def test_catalogs_compile_in_memory() -> None:
    assert load_translations("zh_CN").gettext("Overview") == "概览"
    assert load_translations("en").gettext("Overview") == "Overview"
