"""Bayesian marketing mix model: how much of the outcome each media channel drove, with intervals.

A marketing mix model (MMM) explains a weekly (or daily) outcome — sales, sign-ups, revenue —
as a baseline (trend, seasonality, holidays, controls) plus one contribution per media channel::

    outcome[t] = baseline[t] + sum_c beta[c] * saturation_c(adstock_c(spend[:, c]))[t] + noise

- **Adstock** (:mod:`mixwise.mmm.transforms`) spreads each period's spend over the following
  periods (carry-over): a TV flight keeps selling for weeks after it airs.
- **Saturation** (:mod:`mixwise.mmm.transforms`) bends the adstocked spend into diminishing
  returns: the tenth million buys less than the first.
- ``beta[c]`` is the channel's effect at full saturation.

Everything is estimated jointly in NumPyro, so every contribution, ROI and response curve comes
with a posterior interval, and a fit that did not converge says so. Spend and outcome are scaled
to O(1) before fitting (each channel's spend divided by its mean), which is the scale the default
priors are written for.

The transforms are small registered components, looked up by name so that a fitted model run
serialises and reloads::

    from mixwise.mmm.transforms import get_adstock, get_saturation

    adstock = get_adstock("geometric", l_max=8)
    saturation = get_saturation("hill")

This package (and :mod:`mixwise.optimize`) is the only place that imports JAX; importing
``mixwise.mmm`` itself stays light.
"""
