"""RFM scoring, the segment map, and the order rules shared with CLV."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from jobs.customers.config import load_customer_value_config
from jobs.customers.orders import OrderDataError, OrderRules, prepare_orders
from jobs.customers.rfm import DEFAULT_SEGMENTS_PATH, load_segments, score_rfm
from jobs.errors import JobInputError

ROOT = Path(__file__).resolve().parents[1]
SEGMENT_NAMES = {
    "Champions",
    "Loyal Customers",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
}


def heavy_tie_orders(n_customers=2000, seed=7):
    """Half the customers buy once; amounts on a coarse grid so monetary ties are common too."""
    rng = np.random.default_rng(seed)
    counts = np.where(rng.random(n_customers) < 0.5, 1, rng.integers(2, 9, n_customers))
    customer = np.repeat([f"c{i:05d}" for i in range(n_customers)], counts)
    days = rng.integers(0, 400, len(customer))
    return pd.DataFrame(
        {
            "customer_id": customer,
            "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D"),
            "amount": rng.choice([10.0, 20.0, 50.0, 100.0], len(customer)),
        }
    )


def test_scores_are_identical_under_any_shuffle_of_the_rows():
    orders = heavy_tie_orders()
    reference = score_rfm(orders, as_of="2025-02-15")
    rng = np.random.default_rng(1)
    for _ in range(25):
        shuffled = orders.sample(frac=1.0, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)
        pd.testing.assert_frame_equal(score_rfm(shuffled, as_of="2025-02-15"), reference)


def test_ties_share_a_score_and_the_tie_rule_is_the_documented_one():
    orders = heavy_tie_orders()
    result = score_rfm(orders, as_of="2025-02-15")
    # Equal values always mean equal scores, for every measure.
    for value, score in (("recency_days", "r_score"), ("frequency", "f_score"), ("monetary", "m_score")):
        assert (result.groupby(value)[score].nunique() == 1).all()
        assert result[score].between(1, 5).all()
    # The one-time buyers (about half) all sit in the lowest frequency score, and the next score
    # used is 1 + floor(5 * share_of_one_time_buyers), not 2: identical customers are never split.
    once = result["frequency"] == 1
    assert 0.45 < once.mean() < 0.55
    assert (result.loc[once, "f_score"] == 1).all()
    expected_next = 1 + int(np.floor(5 * once.sum() / len(result)))
    assert result.loc[~once, "f_score"].min() == expected_next
    # Recency is inverted: the most recent buyers have the top score.
    assert result.loc[result["recency_days"].idxmin(), "r_score"] == 5
    assert result.loc[result["recency_days"].idxmax(), "r_score"] == 1


def test_every_customer_gets_exactly_one_named_segment():
    result = score_rfm(heavy_tie_orders(), as_of="2025-02-15")
    assert result["segment"].notna().all()
    assert set(result["segment"]) <= SEGMENT_NAMES
    assert result.index.is_unique and result.index.is_monotonic_increasing
    assert (
        result["rfm_cell"] == result[["r_score", "f_score", "m_score"]].astype(str).agg("".join, axis=1)
    ).all()


def test_small_example_by_hand():
    orders = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "c", "c", "d", "e", "late"],
            "order_date": [
                "2024-06-01", "2024-06-01", "2024-06-20", "2024-03-01", "2024-05-01",
                "2024-06-25", "2024-01-10", "2024-06-29", "2024-07-05",
            ],
            "amount": [10, 15, 30, 500, 40, 60, 5, 20, 999],
        }
    )  # fmt: skip
    result = score_rfm(orders, as_of="2024-06-30T18:00:00")
    assert list(result.index) == ["a", "b", "c", "d", "e"]  # "late" bought after as_of
    assert result.loc["a", "frequency"] == 2  # two orders on 2024-06-01 are one purchase day
    assert result.loc["a", "monetary"] == 55
    assert result["recency_days"].to_dict() == {"a": 10, "b": 121, "c": 5, "d": 172, "e": 1}
    assert result["r_score"].to_dict() == {"a": 3, "b": 2, "c": 4, "d": 1, "e": 5}
    # Frequencies 2,1,2,1,1: the three 1s share rank 1 -> score 1; the two 2s share rank 4 -> score 4.
    assert result["f_score"].to_dict() == {"a": 4, "b": 1, "c": 4, "d": 1, "e": 1}
    assert result["m_score"].to_dict() == {"a": 3, "b": 5, "c": 4, "d": 1, "e": 2}
    assert result.loc["b", "rfm_cell"] == "215"
    assert result.loc["e", "segment"] == "Potential Loyalist"  # R=5, FM=ceil((1+2)/2)=2


def test_other_bin_counts_need_a_matching_segment_map(tmp_path):
    with pytest.raises(ConfigError, match="bins = 5"):
        score_rfm(heavy_tie_orders(200), as_of="2025-02-15", bins=4)
    three = tmp_path / "three.toml"
    three.write_text(
        'bins = 3\n[[segment]]\nname = "High"\nmatch = [{ r = "3" }]\n'
        '[[segment]]\nname = "Rest"\nmatch = [{ r = "1-2" }]\n'
    )
    result = score_rfm(heavy_tie_orders(200), as_of="2025-02-15", bins=3, segments=three)
    assert set(result["segment"]) == {"High", "Rest"}
    assert result[["r_score", "f_score", "m_score"]].max().max() == 3
    with pytest.raises(ConfigError, match="2 to 9"):
        score_rfm(heavy_tie_orders(200), as_of="2025-02-15", bins=12)


@pytest.mark.parametrize("as_of", ["yesterday", pd.NaT, None])
def test_an_as_of_that_is_not_a_date_is_a_clear_error(as_of):
    with pytest.raises(JobInputError, match="as_of"):
        score_rfm(heavy_tie_orders(20), as_of=as_of)


def test_returns_must_be_treated_before_scoring():
    orders = pd.DataFrame({"customer_id": ["a", "a"], "order_date": ["2024-01-01"] * 2, "amount": [10, -4]})
    with pytest.raises(OrderDataError, match="prepare_orders"):
        score_rfm(orders, as_of="2024-02-01")
    with pytest.raises(OrderDataError, match="no column"):
        score_rfm(orders.rename(columns={"amount": "total"}), as_of="2024-02-01")


# ---------------------------------------------------------------------------------------------
# the segment file


def test_shipped_segment_file_covers_all_125_cells_once_with_the_eleven_segments():
    segments = load_segments(DEFAULT_SEGMENTS_PATH)
    assert segments.bins == 5
    assert {s.name for s in segments.segments} == SEGMENT_NAMES
    cells = [c for s in segments.segments for c in s.cells]
    assert len(cells) == 125 and len(set(cells)) == 125
    lookup = segments.cell_lookup()
    assert lookup["555"] == "Champions" and lookup["111"] == "Lost" and lookup["155"] == "Can't Lose Them"
    assert lookup["511"] == "New Customers" and lookup["333"] == "Need Attention"


def _write_segments(tmp_path, text):
    path = tmp_path / "rfm_segments.toml"
    path.write_text(text)
    return path


def test_a_gap_names_the_unassigned_cells(tmp_path):
    path = _write_segments(
        tmp_path,
        'bins = 5\n\n[[segment]]\nname = "Recent"\nmatch = [{ r = "3-5" }]\n\n'
        '[[segment]]\nname = "Old"\nmatch = [{ r = "1", fm = "1-4" }]\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_segments(path)
    text = str(caught.value)
    assert str(path) in text and "[segment]" in text
    # r = 2 (25 cells) and r = 1 with fm = 5 (f + m >= 9: 145, 154, 155).
    assert "28 of 125 cells belong to no segment" in text
    assert "155" in text and "211" in text


def test_an_overlap_names_the_cells_and_both_entries_with_lines(tmp_path):
    path = _write_segments(
        tmp_path,
        'bins = 5\n\n[[segment]]\nname = "Top"\nmatch = [{ r = "4-5", fm = "4-5" }]\n\n'
        '[[segment]]\nname = "Rest"\nmatch = [{ r = "1-4" }, { r = "5", fm = "1-3" }]\n'
        '\n[[segment]]\nname = "Extra"\nmatch = [{ cells = ["555"] }]\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_segments(path)
    text = str(caught.value)
    assert "assigned to more than one segment" in text
    assert "'Top' (line 4)" in text and "'Rest' (line 8)" in text and "'Extra' (line 12)" in text
    assert "444" in text and "555" in text
    assert caught.value.line is not None


def test_segment_file_typos_get_did_you_mean_hints(tmp_path):
    path = _write_segments(tmp_path, 'bins = 5\n[[segment]]\nname = "All"\nmatch = [{ rr = "1-5" }]\n')
    with pytest.raises(ConfigError, match="did you mean 'r'"):
        load_segments(path)
    path = _write_segments(tmp_path, 'bins = 5\n[[segment]]\nname = "All"\nmatch = [{ r = "1-6" }]\n')
    with pytest.raises(ConfigError, match=r"outside the scores 1\.\.5"):
        load_segments(path)
    path = _write_segments(tmp_path, 'bins = 5\n[[segment]]\nname = "All"\nmatchs = [{ r = "1-5" }]\n')
    with pytest.raises(ConfigError, match="did you mean 'match'"):
        load_segments(path)


# ---------------------------------------------------------------------------------------------
# order rules


def canonical_orders():
    return pd.DataFrame(
        {
            "order_id": range(9),
            "customer_id": ["a", "a", "a", "b", "b", "c", "d", None, "a"],
            "order_date": [
                "2024-01-01", "2024-01-01T15:00:00Z", "2024-02-01", "2024-01-05", "2024-01-06",
                "2024-01-01", "2024-03-01", "2024-01-01", "2024-03-01",
            ],
            "amount": [10.0, 20.0, -15.0, 0.0, 5.0, -3.0, 40.0, 1.0, 30.0],
            "status": [
                "fulfilled", "invoiced", "fulfilled", "fulfilled", "cancelled", "invoiced", "active",
                "fulfilled", "fulfilled",
            ],
        }
    )  # fmt: skip


def test_default_order_rules_net_returns_and_drop_cancelled_and_zero_orders():
    prepared = prepare_orders(canonical_orders())
    purchases = prepared.purchases.set_index(["customer_id", "order_date"])
    # a bought 30 on 2024-01-01 (two orders) and 30 on 2024-03-01, returned 15: net 45 of 60,
    # spread in proportion -> 22.5 + 22.5.
    assert purchases["amount"].to_dict() == {
        ("a", pd.Timestamp("2024-01-01")): 22.5,
        ("a", pd.Timestamp("2024-03-01")): 22.5,
    }
    assert purchases.loc[("a", pd.Timestamp("2024-01-01")), "orders"] == 2
    assert prepared.returns_netted == pytest.approx(15.0)
    assert prepared.excluded == {
        "$0 orders": 1,
        "status cancelled": 1,
        "status active": 1,
        "without customer": 1,
        "returns of customers without a purchase": 1,
    }
    assert "left out" in prepared.describe()


def test_alternative_order_rules():
    prepared = prepare_orders(
        canonical_orders(), OrderRules(zero_amount="count_as_activity", returns="exclude")
    )
    amounts = prepared.purchases.groupby("customer_id")["amount"].sum().to_dict()
    assert amounts == {"a": 60.0, "b": 0.0}
    assert prepared.excluded["returns"] == 2
    # b's $0 order is a purchase event for RFM frequency but adds nothing to monetary value.
    scores = score_rfm(prepared.purchases, as_of="2024-03-31")
    assert scores.loc["b", "frequency"] == 1 and scores.loc["b", "monetary"] == 0


def test_order_rules_refuse_bad_settings_and_missing_status():
    with pytest.raises(ValueError, match="cancelled"):
        OrderRules(statuses=("fulfilled", "cancelled"))
    with pytest.raises(ValueError, match="unknown order status"):
        OrderRules(statuses=("shipped",))
    with pytest.raises(OrderDataError, match='status_col = ""'):
        prepare_orders(canonical_orders().drop(columns="status"))
    no_status = prepare_orders(canonical_orders().drop(columns="status"), OrderRules(status_col=""))
    assert "status cancelled" not in no_status.excluded
    bad = canonical_orders()
    bad["amount"] = bad["amount"].astype(object)
    bad.loc[0, "amount"] = "ten"
    with pytest.raises(OrderDataError, match="not numbers"):
        prepare_orders(bad)


# ---------------------------------------------------------------------------------------------
# customer_value.toml


def test_shipped_customer_value_config_loads_with_documented_defaults():
    config = load_customer_value_config(ROOT / "mappings" / "customer_value.toml")
    assert config.orders == OrderRules()
    assert config.rfm.bins == 5 and len(config.rfm.segments.segments) == 11
    assert config.clv.time_unit == "W" and config.clv.horizon == pytest.approx(365.2425 / 7)
    assert config.clv.discount_rate == 0.0 and config.clv.margin == 1.0
    assert config.flags.high_value == "top_percent" and config.flags.churn_below == 0.3


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('horizon = "12M"', "horizon = 52"), r"customer_value.toml:\d+ \[clv.horizon\]: 52 has no unit"),
        (('horizon = "12M"', 'horizon = "12m"'), r"\[clv.horizon\]: .*minutes"),
        (("margin = 1.0", "margin = 30"), r"\[clv.margin\]: margin = 30 is outside"),
        (('returns = "net"', 'returns = "netted"'), r"\[orders.returns\]"),
        (
            ('statuses = ["fulfilled", "invoiced"]', 'statuses = ["fulfilled", "invoicd"]'),
            r"\[orders.statuses\]: unknown order status.*did you mean 'invoiced'",
        ),
        (
            ('statuses = ["fulfilled", "invoiced"]', 'statuses = ["fulfilled", "cancelled"]'),
            r"\[orders.statuses\]: cancelled orders are never purchases",
        ),
        (
            ('statuses = ["fulfilled", "invoiced"]', "statuses = []"),
            r"\[orders.statuses\]: statuses is empty",
        ),
        (('returns = "net"', 'returns = "nett"'), r"\[orders.returns\]: .*did you mean 'net'"),
        (("churn_below = 0.3", "churn_bellow = 0.3"), "did you mean 'churn_below'"),
        (("bins = 5", "bins = 4"), "written for bins = 5"),
    ],
)
def test_customer_value_config_errors_name_file_line_and_key(tmp_path, edit, message):
    text = (ROOT / "mappings" / "customer_value.toml").read_text()
    assert edit[0] in text
    (tmp_path / "customer_value.toml").write_text(text.replace(edit[0], edit[1]))
    (tmp_path / "rfm_segments.toml").write_text(DEFAULT_SEGMENTS_PATH.read_text())
    with pytest.raises(ConfigError, match=message):
        load_customer_value_config(tmp_path / "customer_value.toml")
