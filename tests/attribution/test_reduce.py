"""Journeys → paths in the warehouse engine, pinned on hand-made journeys."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixwise.attribution.data import FIRST_TOUCH, LEAD_CREATION, OPPORTUNITY_CREATION
from mixwise.attribution.inputs import PathFileError, load_paths
from mixwise.attribution.reduce import JourneyOptions, Reduction, reduce_journeys
from mixwise.workspace import Workspace


def ts(text: str) -> str:
    return f"2024-01-{text}+00:00"


@pytest.fixture
def journeys(workspace: Workspace) -> Workspace:
    touches = [  # journey, time, channel, campaign
        ("a", "01 00:00", "x", "x1"),
        ("a", "02 00:00", "y", None),
        ("a", "05 00:00", "x", "x2"),
        ("b", "01 00:00", "y", None),
        ("b", "03 00:00", "y", None),
        ("c", "02 00:00", "x", "x1"),
        ("d", "01 00:00", "z", None),
        ("f", "01 00:00", "x", None),
        ("f", "01 00:00", "y", None),
        ("f", "20 00:00", "z", None),
    ]
    tp = pd.DataFrame(touches, columns=["journey_id", "timestamp", "channel", "campaign"])
    tp["timestamp"] = tp["timestamp"].map(ts)
    conv = pd.DataFrame(
        [
            ("a", ts("03 00:00"), 10.0),
            ("b", ts("04 00:00"), 5.0),
            ("e", ts("04 00:00"), 7.0),
            ("f", ts("01 00:00"), 2.0),
            ("f", ts("30 00:00"), 4.0),
        ],
        columns=["journey_id", "timestamp", "value"],
    )
    leads = pd.DataFrame(
        [("a", "lead", ts("01 12:00")), ("a", "opportunity", ts("02 12:00"))],
        columns=["lead_id", "stage", "entered_at"],
    )
    for kind, frame in (("touchpoints", tp), ("conversions", conv), ("leads", leads)):
        assert workspace.ingest(kind, frame).ok
    return workspace


def reduce(ws: Workspace, **options: object) -> Reduction:
    w = ws.warehouse
    return reduce_journeys(
        w.expr("touchpoints"), w.expr("conversions"), w.expr("leads"), JourneyOptions(**options)
    )  # type: ignore[arg-type]


def frame(r: Reduction) -> dict[str, tuple[float, float, float]]:
    f = r.paths.to_frame()
    return {p: (c, n, v) for p, c, n, v in f.itertuples(index=False)}


def test_segments_by_hand(journeys: Workspace) -> None:
    r = reduce(journeys)
    # a: x, y -> conv(10), then x -> null.  b: y, y -> conv(5).  c: x null.  d: z null.
    # e: a conversion with no touch (unattributed).  f: x and y at the same instant as its
    # first conversion (ties: the touch counts; order by time then name), z then conv(4).
    assert frame(r) == {
        "x": (0.0, 2.0, 0.0),
        "x > y": (2.0, 0.0, 12.0),
        "y > y": (1.0, 0.0, 5.0),
        "z": (1.0, 1.0, 4.0),
    }
    assert (r.unattributed, r.unattributed_value) == (1, 7.0)
    assert r.journeys == 7
    assert r.paths.conversions.sum() + r.unattributed == 5  # every conversion accounted for


def test_converting_touches_carry_age_and_milestones(journeys: Workspace) -> None:
    t = reduce(journeys).touches
    assert t.channels == ("x", "y", "z")
    assert t.offsets.tolist() == [0, 2, 4, 6, 7]
    # Conversions ordered by journey then segment: a, b, f#0, f#1.
    assert t.tokens.tolist() == [0, 1, 1, 1, 0, 1, 2]
    assert t.age_days.tolist() == [2.0, 1.0, 3.0, 1.0, 0.0, 0.0, 10.0]
    assert t.value.tolist() == [10.0, 5.0, 2.0, 4.0]
    assert t.has_lead_milestones
    # a's lead was created after x (day 1) and its opportunity after y (day 2).
    assert t.milestone[0] == FIRST_TOUCH | LEAD_CREATION
    assert t.milestone[1] == OPPORTUNITY_CREATION
    assert t.milestone[2] == FIRST_TOUCH


def test_lookback_window(journeys: Workspace) -> None:
    r = reduce(journeys, lookback_days=1.5)
    # a keeps y only (x is 2 days old); b keeps its second y; f#1's z is 10 days old: gone,
    # so that conversion is unattributed.
    assert frame(r)["y"] == (2.0, 0.0, 15.0)
    assert r.unattributed == 2 and r.unattributed_value == 11.0


def test_conversion_window(journeys: Workspace) -> None:
    r = reduce(journeys, conversion_window_days=2)
    # f#1 converts 10 days after z: its path becomes a null path, the conversion unattributed.
    assert frame(r)["z"] == (0.0, 2.0, 0.0)
    assert r.unattributed == 2


def test_date_range_and_campaigns(journeys: Workspace) -> None:
    r = reduce(journeys, start=dt.date(2024, 1, 4), end=dt.date(2024, 1, 4))
    assert frame(r) == {"y > y": (1.0, 0.0, 5.0)}
    assert r.unattributed == 1  # e
    r = reduce(journeys, granularity="campaign")
    assert "x:x1 > y" in frame(r) and frame(r)["x:x2"] == (0.0, 1.0, 0.0)


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="lookback_days"):
        JourneyOptions(lookback_days=0)
    with pytest.raises(ValueError, match="after end"):
        JourneyOptions(start=dt.date(2024, 2, 1), end=dt.date(2024, 1, 1))


def test_path_file_with_channel_attribution_columns(tmp_path: Path) -> None:
    path = tmp_path / "paths.csv"
    path.write_text(
        'path,total_conversions,total_conversion_value,total_null\n"b",1,5,4\n"a > b",4,32,10\n'
    )
    paths = load_paths(path)
    assert paths.channels == ("a", "b")
    assert paths.to_frame().to_dict("list") == {
        "path": ["a > b", "b"],
        "conversions": [4.0, 1.0],
        "nulls": [10.0, 4.0],
        "value": [32.0, 5.0],
    }
    assert np.array_equal(paths.tokens, [0, 1, 1])


@pytest.mark.parametrize(
    ("content", "row", "column", "needle"),
    [
        ('path,conversions,nulls\n"a > b",1,2\n"a >  > c",1,1\n', 2, "path", "a channel is empty"),
        ('path,conversions,nulls\n"a",1,2\n"b",-3,1\n', 2, "conversions", "≥ 0"),
        ('path,conversions,nulls\n"a",1,2\n,1,1\n', 2, "path", "missing value"),
        ("route,conversions,nulls\na,1,2\n", None, "path", "required column is missing"),
    ],
)
def test_bad_path_files_name_row_and_column(
    tmp_path: Path, content: str, row: int | None, column: str, needle: str
) -> None:
    path = tmp_path / "paths.csv"
    path.write_text(content)
    with pytest.raises(PathFileError) as err:
        load_paths(path)
    first = err.value.report.errors[0]
    assert (first.row, first.column) == (row, column) and needle in first.message
    assert "paths.csv" in str(err.value)


def _random_journeys(ws: Workspace, seed: int) -> None:
    """Journeys with ties, several conversions, touches after conversions, and leads."""
    rng = np.random.default_rng(seed)
    n_touch, n_conv = 600, 120
    base = pd.Timestamp("2024-03-01", tz="UTC")
    tp = pd.DataFrame(
        {
            "journey_id": [f"j{i}" for i in rng.integers(0, 150, n_touch)],
            # Whole hours: many ties between touches, and between touches and conversions.
            "timestamp": base + pd.to_timedelta(rng.integers(0, 24 * 20, n_touch), unit="h"),
            "channel": rng.choice(["a", "b", "c", "d"], n_touch),
            "campaign": rng.choice(["k1", "k2", None], n_touch),
        }
    ).drop_duplicates(["journey_id", "timestamp", "channel"])
    conv = pd.DataFrame(
        {
            "journey_id": [f"j{i}" for i in rng.integers(0, 200, n_conv)],
            "timestamp": base + pd.to_timedelta(rng.integers(0, 24 * 20, n_conv), unit="h"),
            "value": rng.gamma(2.0, 50.0, n_conv).round(2),
        }
    ).drop_duplicates(["journey_id", "timestamp"])
    leads = pd.DataFrame(
        {
            "lead_id": [f"j{i}" for i in range(0, 150, 3)],
            "stage": "lead",
            "entered_at": base + pd.to_timedelta(rng.integers(0, 24 * 20, 50), unit="h"),
        }
    )
    for kind, frame in (("touchpoints", tp), ("conversions", conv), ("leads", leads)):
        assert ws.ingest(kind, frame).ok, kind


def _same(a: Reduction, b: Reduction) -> None:
    pd.testing.assert_frame_equal(a.paths.to_frame(), b.paths.to_frame())
    assert (a.unattributed, a.journeys) == (b.unattributed, b.journeys)
    assert a.unattributed_value == pytest.approx(b.unattributed_value)
    for name in ("offsets", "tokens", "age_days", "milestone", "value"):
        np.testing.assert_allclose(getattr(a.touches, name), getattr(b.touches, name))


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_path_equals_the_general_segmentation(workspace: Workspace, seed: int) -> None:
    """Most journeys take a one-pass fast path; a lookback of a million days (which drops
    nothing) sends every journey through the general union-and-window segmentation."""
    _random_journeys(workspace, seed)
    for granularity in ("channel", "campaign"):
        fast = reduce(workspace, granularity=granularity)
        general = reduce(workspace, granularity=granularity, lookback_days=1e6)
        _same(fast, general)
        assert fast.paths.conversions.sum() + fast.unattributed == len(
            workspace.table("conversions")
        )


def test_reduction_in_parts_equals_one_part(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mixwise.attribution.reduce as reduce_module

    _random_journeys(workspace, 3)
    whole = reduce(workspace)
    monkeypatch.setattr(reduce_module, "PARTITION_TOUCHES", 97)  # ~6 parts
    _same(reduce(workspace), whole)


def test_sub_second_times_take_the_microsecond_packing(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Whole-second data is packed in seconds (32 bits), anything finer in µs: both give the
    same reduction, and touches a few µs apart keep their order."""
    import mixwise.attribution.reduce as reduce_module

    _random_journeys(workspace, 4)
    seconds = reduce(workspace)
    w = workspace.warehouse
    assert reduce_module._vocabulary(w.expr("touchpoints"), "channel").tick_us == 1_000_000

    shifted = Workspace.init(tmp_path / "shifted")
    half = pd.Timedelta(milliseconds=500)
    for kind, column in (("touchpoints", "timestamp"), ("conversions", "timestamp")):
        frame = workspace.table(kind)
        frame[column] = frame[column] + half
        assert shifted.ingest(kind, frame).ok
    leads = workspace.table("leads")
    leads["entered_at"] = leads["entered_at"] + half
    assert shifted.ingest("leads", leads).ok
    sw = shifted.warehouse
    assert reduce_module._vocabulary(sw.expr("touchpoints"), "channel").tick_us == 1
    _same(reduce(shifted), seconds)

    close = Workspace.init(tmp_path / "close")
    tp = pd.DataFrame(
        {
            "journey_id": ["q", "q"],
            "timestamp": [ts("01 00:00:00.000002"), ts("01 00:00:00.000001")],
            "channel": ["a", "b"],
        }
    )
    assert close.ingest("touchpoints", tp).ok
    assert reduce(close).paths.path_strings() == ["b > a"]


@pytest.mark.parametrize("digits", [1, 2, 0])
def test_paths_too_long_for_an_integer_key_merge_in_the_engine_alike(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, digits: int
) -> None:
    """Paths become one integer key when short enough (15 touches at 9 channels); longer
    ones are merged by the engine. Forcing the limit down sends most paths (0: every path)
    there: the same paths, counts and order (by length, then by channel codes)."""
    import mixwise.attribution.reduce as reduce_module

    _random_journeys(workspace, 5)
    whole = reduce(workspace)
    lengths = whole.paths.lengths
    assert lengths.max() > 2 and np.all(np.diff(lengths) >= 0)
    monkeypatch.setattr(reduce_module, "_key_digits", lambda base: digits)
    monkeypatch.setattr(reduce_module, "PARTITION_TOUCHES", 150)  # parts repeat paths
    _same(reduce(workspace), whole)


def test_parts_bounded_by_ids_with_quotes(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Part bounds are journey ids put into SQL: quotes in them are escaped."""
    import mixwise.attribution.reduce as reduce_module

    _random_journeys(workspace, 6)
    quoted = Workspace.init(tmp_path / "quoted")
    for kind, column in (("touchpoints", "journey_id"), ("conversions", "journey_id")):
        frame = workspace.table(kind)
        frame[column] = frame[column].str.replace("j", "o'j", regex=False)
        assert quoted.ingest(kind, frame).ok
    whole = reduce(quoted)
    monkeypatch.setattr(reduce_module, "_SAMPLE_ROWS", 10_000)  # every id can be a bound
    monkeypatch.setattr(reduce_module, "PARTITION_TOUCHES", 60)
    _same(reduce(quoted), whole)


def test_many_tokens_in_parts(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond 64 tokens the codes come from a joined table instead of a list lookup; in parts
    too the reduction equals the one-part one."""
    import mixwise.attribution.reduce as reduce_module

    rng = np.random.default_rng(8)
    n = 400
    tp = pd.DataFrame(
        {
            "journey_id": [f"j{i}" for i in rng.integers(0, 90, n)],
            "timestamp": pd.Timestamp("2024-03-01", tz="UTC")
            + pd.to_timedelta(rng.permutation(n), unit="h"),
            "channel": [f"c{k:02d}" for k in rng.integers(0, 70, n)],
        }
    )
    conv = pd.DataFrame(
        {
            "journey_id": [f"j{i}" for i in range(0, 90, 2)],
            "timestamp": pd.Timestamp("2024-06-01", tz="UTC"),
            "value": 10.0,
        }
    )
    assert workspace.ingest("touchpoints", tp).ok and workspace.ingest("conversions", conv).ok
    whole = reduce(workspace)
    assert len(whole.paths.channels) > 64
    monkeypatch.setattr(reduce_module, "_SAMPLE_ROWS", 10_000)
    monkeypatch.setattr(reduce_module, "PARTITION_TOUCHES", 50)
    _same(reduce(workspace), whole)
