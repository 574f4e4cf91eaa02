"""Multi-touch attribution: rule-based and data-driven models, calibrated to incrementality.

Raw journeys are reduced in the warehouse engine (:mod:`~mixwise.attribution.reduce`) to
small encoded inputs (:mod:`~mixwise.attribution.data`) on which every model runs.
"""
