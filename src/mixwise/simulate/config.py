"""Configuration of the synthetic market: channels, synergies, holidays, journeys, customers, leads.

All specs are frozen dataclasses with defaults that describe one plausible Chinese e-commerce
advertiser spending in CNY. ``MarketConfig.demo()`` is what the demo workspace loads;
``MarketConfig.small()`` is sized for unit tests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from mixwise.simulate.holidays import BUILTIN_HOLIDAYS, DateLike, to_date

__all__ = [
    "ChannelSpec",
    "CustomerSpec",
    "HolidayEffect",
    "JourneySpec",
    "LeadFunnel",
    "MarketConfig",
    "SynergySpec",
    "default_channels",
]

SpendPattern = Literal["always_on", "flighted", "bursty", "pulsed"]


@dataclass(frozen=True)
class ChannelSpec:
    """One paid channel: how it is bought, how it works, and how users meet it.

    Aggregate response: ``effect * hill(adstock(spend), half, shape)`` revenue per day, where
    ``adstock`` is normalised (steady spend ``x`` → steady adstock ``x``), geometric with
    ``decay`` or, when ``peak > 0``, delayed with its peak ``peak`` days after the spend.

    ``cpm`` is the cost per thousand impressions (currency units) and ``ctr`` the click-through
    rate of impressions. ``touch_weight`` is the relative frequency of user-level touches at mean
    spend, ``intent_tilt`` how much more high-intent users meet the channel (log-scale slope per
    standard deviation of intent) and ``click_prob`` the share of its user touches that are clicks
    (the rest are impressions).
    """

    name: str
    spend: float
    decay: float
    half: float
    shape: float
    effect: float
    cpm: float
    ctr: float
    peak: float = 0.0
    max_lag: int = 21
    pattern: SpendPattern = "always_on"
    campaigns: tuple[str, ...] = ()
    campaign_shares: tuple[float, ...] = ()
    holiday_sensitivity: float = 1.0
    touch_weight: float = 1.0
    intent_tilt: float = 0.0
    click_prob: float = 1.0

    def __post_init__(self) -> None:
        if self.spend < 0 or self.half <= 0 or self.shape <= 0 or self.effect < 0:
            raise ValueError(f"channel {self.name!r}: spend/effect >= 0, half/shape > 0")
        if not 0 <= self.decay < 1:
            raise ValueError(f"channel {self.name!r}: decay must be in [0, 1)")
        if self.peak > 0 and self.decay == 0:
            raise ValueError(f"channel {self.name!r}: delayed adstock needs decay > 0")
        campaigns = self.campaigns or (f"{self.name}_core",)
        shares = self.campaign_shares or tuple(1.0 / len(campaigns) for _ in campaigns)
        if len(shares) != len(campaigns) or abs(sum(shares) - 1.0) > 1e-9:
            raise ValueError(f"channel {self.name!r}: campaign_shares must match and sum to 1")
        object.__setattr__(self, "campaigns", tuple(campaigns))
        object.__setattr__(self, "campaign_shares", tuple(float(s) for s in shares))


@dataclass(frozen=True)
class SynergySpec:
    """Cross-channel synergy: ``sources`` amplify the effect of ``target``.

    The target's effect is multiplied by ``1 + strength * mean_s(hill_s)`` where ``hill_s`` is
    the saturated (adstocked, Hill-transformed, in [0, 1)) activity of each source channel.
    """

    target: str = "brand_search"
    sources: tuple[str, ...] = ("social", "video")
    strength: float = 0.6


@dataclass(frozen=True)
class HolidayEffect:
    """Effect of a named holiday: ``revenue_lift`` multiplies baseline by ``1 + lift`` on the day,
    ramping linearly over ``before`` days before and ``after`` days after; ``spend_lift`` does the
    same to every channel's spend (scaled by the channel's ``holiday_sensitivity``)."""

    name: str
    revenue_lift: float
    before: int = 3
    after: int = 1
    spend_lift: float = 0.0


@dataclass(frozen=True)
class JourneySpec:
    """User-level journeys (see :mod:`mixwise.simulate.journeys`)."""

    incremental_share: float = 0.4
    baseline_conversion_rate: float = 0.05
    intent_slope: float = 1.3
    mean_touches: float = 3.0
    touches_intent_slope: float = 0.25
    max_touches: int = 12
    direct_touch_weight: float = 0.5
    direct_intent_tilt: float = 1.3
    closing_touch_prob: float = 0.5
    closing_direct_share: float = 0.7
    mean_gap_hours: float = 30.0
    conversion_delay_hours: float = 6.0
    value_shape: float = 3.0
    pilot_size: int = 20_000

    def __post_init__(self) -> None:
        if not 0.0 <= self.incremental_share < 0.9:
            raise ValueError("incremental_share must be in [0, 0.9)")
        if not 0.0 < self.baseline_conversion_rate < 1.0:
            raise ValueError("baseline_conversion_rate must be in (0, 1)")
        if not 2 <= self.max_touches <= 17:
            raise ValueError("max_touches must be in [2, 17]")


@dataclass(frozen=True)
class CustomerSpec:
    """Customer-lifetime process behind ``orders`` (BG/NBD-like with gamma-gamma values)."""

    n_customers: int = 1500
    purchase_shape: float = 1.2
    mean_interpurchase_days: float = 45.0
    dropout_a: float = 1.0
    dropout_b: float = 5.0
    value_p: float = 5.0
    value_q: float = 4.0
    max_orders: int = 60


@dataclass(frozen=True)
class LeadFunnel:
    """Lead funnel: lead → mql → sql → opportunity → won/lost.

    ``advance[i]`` is the probability of moving from stage ``i`` to ``i + 1`` (leads that do not
    advance stall there), ``p_won`` the probability an opportunity is won (else lost) and
    ``mean_delay_days[i]`` the mean (exponential) delay of the transition out of stage ``i``.
    """

    advance: tuple[float, float, float] = (0.5, 0.45, 0.55)
    p_won: float = 0.3
    mean_delay_days: tuple[float, float, float, float] = (2.0, 6.0, 10.0, 25.0)
    leads_per_day: float = 6.0


def default_channels() -> tuple[ChannelSpec, ...]:
    """The eight default channels (CNY per day)."""
    return (
        ChannelSpec(
            "tv",
            60_000,
            decay=0.7,
            peak=2.0,
            half=70_000,
            shape=1.6,
            effect=280_000,
            cpm=30.0,
            ctr=0.0,
            pattern="flighted",
            campaigns=("tv_always_on", "tv_flight_brand"),
            campaign_shares=(0.4, 0.6),
            holiday_sensitivity=0.5,
            touch_weight=0.8,
            click_prob=0.0,
        ),
        ChannelSpec(
            "brand_search",
            15_000,
            decay=0.2,
            half=12_000,
            shape=1.2,
            effect=90_000,
            cpm=60.0,
            ctr=0.08,
            campaigns=("search_brand_core", "search_brand_competitor"),
            campaign_shares=(0.8, 0.2),
            touch_weight=0.7,
            intent_tilt=1.0,
        ),
        ChannelSpec(
            "nonbrand_search",
            25_000,
            decay=0.3,
            half=30_000,
            shape=1.3,
            effect=110_000,
            cpm=45.0,
            ctr=0.03,
            campaigns=("search_generic", "search_category"),
            campaign_shares=(0.6, 0.4),
            touch_weight=1.0,
            intent_tilt=0.1,
        ),
        ChannelSpec(
            "social",
            20_000,
            decay=0.5,
            half=25_000,
            shape=1.4,
            effect=90_000,
            cpm=20.0,
            ctr=0.012,
            pattern="bursty",
            campaigns=("social_feed", "social_kol"),
            campaign_shares=(0.7, 0.3),
            touch_weight=1.6,
            click_prob=0.2,
        ),
        ChannelSpec(
            "display",
            12_000,
            decay=0.4,
            half=20_000,
            shape=1.1,
            effect=30_000,
            cpm=8.0,
            ctr=0.004,
            campaigns=("display_prospecting", "display_retargeting"),
            campaign_shares=(0.6, 0.4),
            touch_weight=1.8,
            intent_tilt=-0.2,
            click_prob=0.1,
        ),
        ChannelSpec(
            "video",
            18_000,
            decay=0.6,
            half=25_000,
            shape=1.5,
            effect=70_000,
            cpm=25.0,
            ctr=0.006,
            pattern="bursty",
            campaigns=("video_preroll",),
            touch_weight=1.0,
            click_prob=0.1,
        ),
        ChannelSpec(
            "email",
            2_000,
            decay=0.1,
            half=3_000,
            shape=1.0,
            effect=30_000,
            cpm=2.0,
            ctr=0.02,
            pattern="pulsed",
            campaigns=("email_newsletter", "email_lifecycle"),
            campaign_shares=(0.5, 0.5),
            holiday_sensitivity=0.5,
            touch_weight=0.6,
            intent_tilt=0.9,
        ),
        ChannelSpec(
            "affiliate",
            8_000,
            decay=0.1,
            half=10_000,
            shape=1.0,
            effect=40_000,
            cpm=15.0,
            ctr=0.02,
            campaigns=("affiliate_network",),
            touch_weight=0.5,
            intent_tilt=0.4,
        ),
    )


def default_holiday_effects() -> tuple[HolidayEffect, ...]:
    return (
        HolidayEffect("spring_festival", -0.35, before=3, after=7, spend_lift=-0.4),
        HolidayEffect("618", 0.8, before=7, after=1, spend_lift=0.6),
        HolidayEffect("double_11", 1.5, before=10, after=1, spend_lift=1.0),
        HolidayEffect("black_friday", 0.3, before=3, after=3, spend_lift=0.2),
    )


@dataclass(frozen=True)
class MarketConfig:
    """Everything that defines one synthetic market (the seed is passed separately).

    Money is in ``currency`` units per day, national totals; with ``geos`` the national spend and
    baseline are split by ``geo_weights`` (population shares, default equal).
    ``extra_holidays`` are ``(date, name)`` user events; give them a :class:`HolidayEffect` in
    ``holiday_effects`` to make them move revenue.
    """

    start: DateLike = "2024-01-01"
    days: int = 730
    geos: tuple[str, ...] | None = None
    geo_weights: tuple[float, ...] | None = None
    n_journeys: int = 20_000
    currency: str = "CNY"
    channels: tuple[ChannelSpec, ...] = field(default_factory=default_channels)
    synergies: tuple[SynergySpec, ...] = (SynergySpec(),)
    holiday_effects: tuple[HolidayEffect, ...] = field(default_factory=default_holiday_effects)
    extra_holidays: tuple[tuple[DateLike, str], ...] = ()
    baseline_revenue: float = 600_000.0
    trend: float = 0.08
    weekly: tuple[float, float, float, float, float, float, float] = (
        -0.03,
        -0.04,
        -0.02,
        0.0,
        0.03,
        0.07,
        -0.01,
    )
    yearly_amplitude: float = 0.08
    yearly_peak_day: int = 320
    price_coef: float = -1.2
    promotion_coef: float = 0.12
    competitor_coef: float = -0.04
    noise_sd: float = 0.04
    aov: float = 320.0
    burn_in: int = 56
    journeys: JourneySpec = field(default_factory=JourneySpec)
    customers: CustomerSpec = field(default_factory=CustomerSpec)
    leads: LeadFunnel = field(default_factory=LeadFunnel)

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", to_date(self.start))
        if self.days < 28:
            raise ValueError("days must be >= 28")
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names) or not names:
            raise ValueError("channel names must be unique and non-empty")
        if "direct" in names or "organic" in names:
            raise ValueError("'direct' and 'organic' are reserved channel names")
        for syn in self.synergies:
            for name in (syn.target, *syn.sources):
                if name not in names:
                    raise ValueError(f"synergy refers to unknown channel {name!r}")
        if self.geos is not None:
            if len(self.geos) == 0 or len(set(self.geos)) != len(self.geos):
                raise ValueError("geos must be unique and non-empty")
            if self.geo_weights is not None and len(self.geo_weights) != len(self.geos):
                raise ValueError("geo_weights must match geos")
        elif self.geo_weights is not None:
            raise ValueError("geo_weights given without geos")
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ValueError("currency must be a 3-letter code")
        known = set(BUILTIN_HOLIDAYS) | {n for _, n in self.extra_holidays}
        for eff in self.holiday_effects:
            if eff.name not in known:
                raise ValueError(f"holiday effect for unknown holiday {eff.name!r}")

    @property
    def start_date(self) -> dt.date:
        return to_date(self.start)

    @property
    def end_date(self) -> dt.date:
        """Last simulated day (inclusive)."""
        return self.start_date + dt.timedelta(days=self.days - 1)

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def channel(self, name: str) -> ChannelSpec:
        for spec in self.channels:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def replace(self, **changes: object) -> MarketConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def demo(cls) -> MarketConfig:
        """Two years daily from 2024-01-01, national, 8 channels, 30k journeys."""
        return cls(start="2024-01-01", days=730, n_journeys=30_000)

    @classmethod
    def small(cls) -> MarketConfig:
        """120 days, national, 8 channels, 3k journeys: for unit tests."""
        return cls(
            start="2024-09-01",
            days=120,
            n_journeys=3_000,
            customers=CustomerSpec(n_customers=300),
            leads=LeadFunnel(leads_per_day=4.0),
            journeys=JourneySpec(pilot_size=10_000),
        )
