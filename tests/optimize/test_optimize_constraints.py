"""Constraint rules: reading them, their linear rows, and naming the ones that clash."""

from __future__ import annotations

import numpy as np
import pytest

from mixwise.optimize.constraints import (
    Constraint,
    ConstraintError,
    explain_infeasible,
    feasible_point,
    linear_rules,
    parse_constraint,
)

CHANNELS = ("tv", "video", "search", "display")
GROUPS = {"brand": ("tv", "video"), "performance": ("search", "display")}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("brand>=30%", Constraint("share", "brand", ">=", 0.3)),
        ("brand >= 0.3", Constraint("share", "brand", ">=", 0.3)),
        ("brand=30%+-5%", Constraint("share", "brand", "=", 0.3, 0.05)),
        ("brand=30%±5%", Constraint("share", "brand", "=", 0.3, 0.05)),
        ("tv>=100000", Constraint("amount", "tv", ">=", 100000.0)),
        ("tv<=+20%", Constraint("change", "tv", "<=", 0.2)),
        ("tv>=-10%", Constraint("change", "tv", ">=", -0.1)),
        ("tv=current", Constraint("fixed", "tv", "=", float("nan"))),
        ("tv=5e4", Constraint("fixed", "tv", "=", 50000.0)),
        ("tv>=1", Constraint("amount", "tv", ">=", 1.0)),
        ("tv>=.25", Constraint("share", "tv", ">=", 0.25)),
        ("roi>=2", Constraint("roi", "", ">=", 2.0)),
        ("roi[search]>=1.5", Constraint("roi", "search", ">=", 1.5)),
        ("CPA[brand]<=40", Constraint("cpa", "brand", "<=", 40.0)),
        ("period<=2e5", Constraint("period", "", "<=", 200000.0)),
        ("tv/period<=50000", Constraint("channel_period", "tv", "<=", 50000.0)),
    ],
)
def test_rules_are_read_as_a_planner_writes_them(text: str, expected: Constraint) -> None:
    got = parse_constraint(text)
    assert (got.kind, got.name, got.op, got.tolerance) == (
        expected.kind,
        expected.name,
        expected.op,
        expected.tolerance,
    )
    assert got.value == pytest.approx(expected.value, nan_ok=True)
    assert str(got) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("brand", "expected NAME>=VALUE"),
        ("brand>=abc", "not a number"),
        ("brand>=150%", "between 0 and 100 %"),
        ("roi=2", "takes >= or <="),
        ("roi>=0", "must be > 0"),
        ("tv>=current", "'current' takes ="),
        ("brand>=30%+-5%", "a tolerance takes ="),
        ("period>=5", "a period cap takes <="),
        ("tv>=-5", "must be >= 0"),
        ("t(v)>=5", "not a channel or group name"),
    ],
)
def test_unreadable_rules_say_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(ConstraintError, match=message):
        parse_constraint(text)


def test_unknown_names_list_the_channels_and_groups() -> None:
    with pytest.raises(ConstraintError, match=r"'radio' is neither a channel \(tv, video"):
        linear_rules([parse_constraint("radio>=10")], CHANNELS, GROUPS, 1, 100, "exact", np.ones(4))
    with pytest.raises(ConstraintError, match="define groups with --group"):
        linear_rules([parse_constraint("brand>=10%")], CHANNELS, {}, 1, 100, "exact", np.ones(4))


def _rows(rules: list[str], periods: int = 1, budget: float = 100.0, mode: str = "exact"):
    ref = np.array([10.0, 20.0, 30.0, 40.0])
    parsed = [parse_constraint(r) for r in rules]
    return linear_rules(parsed, CHANNELS, GROUPS, periods, budget, mode, ref)  # type: ignore[arg-type]


def test_each_rule_becomes_the_rows_computed_by_hand() -> None:
    lin = _rows(["brand>=30%", "tv<=+20%", "search=current", "display>=25", "period<=60"], 2)
    x = np.array([[5.0, 10.0, 15.0, 20.0], [1.0, 2.0, 3.0, 4.0]]).ravel()
    values = dict(zip(lin.labels, lin.A @ x, strict=False))
    total = x.sum()  # 60
    assert values["total budget = 100"] == pytest.approx(total)
    # brand share: (5 + 10 + 1 + 2) - 0.3 * 60
    assert values["brand>=30%"] == pytest.approx(18 - 0.3 * total)
    i = lin.labels.index("tv<=+20%")
    assert lin.A[i] @ x == 6.0 and lin.hi[i] == pytest.approx(12.0) and lin.lo[i] == -np.inf
    i = lin.labels.index("search=current")
    assert lin.lo[i] == lin.hi[i] == 30.0
    i = lin.labels.index("display>=25")
    assert lin.lo[i] == 25.0
    caps = [i for i, lab in enumerate(lin.labels) if lab == "period<=60"]
    assert [lin.A[i] @ x for i in caps] == [50.0, 10.0]


def test_a_share_with_a_tolerance_is_a_band() -> None:
    lin = _rows(["brand=30%+-5%"])
    rows = [i for i, lab in enumerate(lin.labels) if lab == "brand=30%+-5%"]
    assert len(rows) == 2
    for share, ok in ((0.24, False), (0.26, True), (0.34, True), (0.36, False)):
        x = np.array([share * 100, 0.0, (1 - share) * 100, 0.0])
        holds = all(lin.lo[i] <= lin.A[i] @ x <= lin.hi[i] for i in rows)
        assert holds is ok, share


def test_a_feasible_set_has_a_point_that_keeps_every_rule() -> None:
    lin = _rows(["brand=30%+-5%", "tv>=10", "display<=5", "search/period<=40"], 3)
    x = feasible_point(lin)
    assert x is not None and np.all(x >= -1e-9)
    r = lin.A @ x
    assert np.all(r >= lin.lo - 1e-7) and np.all(r <= lin.hi + 1e-7)
    assert explain_infeasible(lin) == []


@pytest.mark.parametrize(
    ("rules", "conflict"),
    [
        # floors above the budget: the budget and both floors, not the harmless share
        (["tv>=60", "search>=50", "display<=90"], ["total budget = 100", "tv>=60", "search>=50"]),
        # a brand floor against a cap on its only channels
        (
            ["brand>=50%", "tv<=20", "video<=20", "search>=1"],
            ["total budget = 100", "brand>=50%", "tv<=20", "video<=20"],
        ),
        # two shares that cannot both hold, whatever the budget
        # (with no spend both shares hold: the budget makes them clash)
        (
            ["brand>=70%", "performance>=40%", "tv<=+50%"],
            ["total budget = 100", "brand>=70%", "performance>=40%"],
        ),
    ],
)
def test_clashing_rules_are_named_and_only_those(rules: list[str], conflict: list[str]) -> None:
    lin = _rows(rules)
    found = explain_infeasible(lin)
    assert sorted(found) == sorted(conflict)

    # irreducible: the named rules clash, and dropping any one of them resolves the clash
    def rows_of(names: list[str]) -> list[int]:
        return [i for i, lab in enumerate(lin.labels) if lab in names]

    assert feasible_point(lin, rows_of(found)) is None
    for name in found:
        assert feasible_point(lin, rows_of([n for n in found if n != name])) is not None
