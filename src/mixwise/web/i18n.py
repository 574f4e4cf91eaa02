"""UI languages: gettext catalogs (``locales/<lang>/LC_MESSAGES/messages.po``) loaded with Babel.

The ``.po`` files are the source of truth; they are compiled in memory at startup (no ``.mo``
files in the tree). Templates use ``_()`` / ``{% trans %}`` through ``jinja2.ext.i18n``; Python
code marks its UI strings with :func:`N_` and translates them at render time.
"""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES_DIR = Path(__file__).with_name("locales")
DOMAIN = "messages"
# Language code → its name in that language (shown as is in the switcher).
LANGUAGES: dict[str, str] = {"en": "English", "zh_CN": "简体中文"}
# Babel/BCP 47 tags for number formatting and the HTML lang attribute.
HTML_LANG: dict[str, str] = {"en": "en", "zh_CN": "zh-CN"}


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


def po_path(lang: str) -> Path:
    return LOCALES_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_translations(lang: str) -> Translations:
    """The catalog of ``lang``, compiled in memory from its ``.po`` file."""
    with po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def load_all() -> dict[str, Translations]:
    return {lang: load_translations(lang) for lang in LANGUAGES}


def normalize(lang: str | None) -> str | None:
    """``lang`` if it is a supported UI language (``zh-CN`` is read as ``zh_CN``)."""
    if not lang:
        return None
    lang = lang.replace("-", "_")
    return lang if lang in LANGUAGES else None
