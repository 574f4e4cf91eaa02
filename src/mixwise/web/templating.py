"""Jinja2 rendering with one environment per UI language (``jinja2.ext.i18n``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.numbers import format_decimal, format_percent
from babel.support import Translations
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from mixwise.accounts import role_at_least
from mixwise.store.state import User
from mixwise.web.i18n import HTML_LANG, LANGUAGES, N_, normalize
from mixwise.web.security import S_FLASH, S_LANG, csrf_token

TEMPLATES_DIR = Path(__file__).with_name("templates")
MISSING = "—"  # shown for a figure that cannot be known (CPA without cost, ...)


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str  # msgid, translated in the template
    role: str


NAV: tuple[NavItem, ...] = (
    NavItem("/", N_("Overview"), "viewer"),
    NavItem("/data", N_("Data"), "viewer"),
    NavItem("/attribution", N_("Attribution"), "viewer"),
    NavItem("/mmm", N_("Mix model"), "viewer"),
    NavItem("/planner", N_("Planner"), "viewer"),
    NavItem("/users", N_("Users"), "admin"),
    NavItem("/settings", N_("Settings"), "admin"),
)

ROLE_LABELS: dict[str, str] = {
    "viewer": N_("Viewer"),
    "analyst": N_("Analyst"),
    "budget_owner": N_("Budget owner"),
    "approver": N_("Approver"),
    "admin": N_("Admin"),
}
KIND_LABELS: dict[str, str] = {
    "media": N_("Media spend"),
    "outcomes": N_("Outcomes"),
    "controls": N_("Controls"),
    "touchpoints": N_("Touchpoints"),
    "conversions": N_("Conversions"),
    "paths": N_("Paths"),
    "orders": N_("Orders"),
    "leads": N_("Leads"),
}


def make_environment(translations: Translations, lang: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    locale = lang

    def number(value: Any, digits: int = 0) -> str:
        if value is None:
            return "–"
        fmt = "#,##0" if digits == 0 else "#,##0." + "0" * digits
        return format_decimal(value, format=fmt, locale=locale)

    def metric(value: Any, digits: int = 0) -> str:
        """A figure that may be unknown (no cost → no CPA): "—", never 0 or ∞."""
        if value is None or not math.isfinite(value):
            return MISSING
        return number(value, digits)

    def pct(value: Any, digits: int = 1) -> str:
        """A share (0-1) as a percentage; "—" when unknown."""
        if value is None or not math.isfinite(value):
            return MISSING
        fmt = "#,##0%" if digits == 0 else "#,##0." + "0" * digits + "%"
        return format_percent(value, format=fmt, locale=locale)

    env.filters["number"] = number
    env.filters["metric"] = metric
    env.filters["pct"] = pct
    env.globals.update(
        html_lang=HTML_LANG[lang],
        product="mixwise",
        role_labels=ROLE_LABELS,
        kind_labels=KIND_LABELS,
    )
    return env


class Templates:
    """Renders a template in the request's language with the common page context."""

    def __init__(self, translations: dict[str, Translations], default_language: str) -> None:
        self.translations = translations
        self.default_language = default_language
        self.envs = {lang: make_environment(t, lang) for lang, t in translations.items()}

    def language(self, request: Request, user: User | None = None) -> str:
        if user is None:
            user = getattr(request.state, "user", None)
        if user is not None and (lang := normalize(user.language)):
            return lang
        return normalize(request.session.get(S_LANG)) or self.default_language

    def gettext(self, request: Request) -> Any:
        return self.translations[self.language(request)].gettext

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
        user: User | None = None,
    ) -> HTMLResponse:
        if user is None:
            user = getattr(request.state, "user", None)
        lang = self.language(request, user)
        ws = request.app.state.workspace
        nav = [item for item in NAV if user is not None and role_at_least(user.role, item.role)]
        ctx: dict[str, Any] = {
            "request": request,
            "user": user,
            "lang": lang,
            "languages": LANGUAGES,
            "csrf_token": csrf_token(request),
            "nav": nav,
            "path": request.url.path,
            "workspace_name": ws.get_setting("name"),
            "flashes": request.session.pop(S_FLASH, []),
            "can": (lambda role: user is not None and role_at_least(user.role, role)),
        }
        ctx.update(context or {})
        html = self.envs[lang].get_template(name).render(ctx)
        return HTMLResponse(html, status_code=status_code)


def flash(
    request: Request, message: str, level: str = "success", *, raw: bool = False, **params: Any
) -> None:
    """Queue a message for the next page the session sees.

    ``message`` is a msgid with ``%(name)s`` params, translated when shown; ``raw=True`` shows
    it as is (a domain error text).
    """
    items = list(request.session.get(S_FLASH, []))
    items.append({"level": level, "msg": message, "params": params, "raw": raw})
    request.session[S_FLASH] = items
