"""hora.flow: rate strings, GCRA's promise, and the declarations' checks (no store)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hora.errors import InvalidPayload
from hora.flow import (
    Batch,
    Concurrency,
    Debounce,
    FlowSpec,
    Gates,
    Rate,
    RateLimit,
    Throttle,
    gcra,
    key_value,
    parse_rate,
    window_bound,
)


@pytest.mark.parametrize(("text", "count", "period"), [
    ("10/s", 10, 1.0), ("3/h", 3, 3600.0), ("100/15m", 100, 900.0), ("20/second", 20, 1.0),
    ("5 / min", 5, 60.0), ("1/d", 1, 86400.0), ("7/2hours", 7, 7200.0),
])
def test_rates_parse(text: str, count: int, period: float) -> None:
    rate = parse_rate(text)
    assert (rate.count, rate.period) == (count, period)
    assert parse_rate(str(rate)) == rate  # the canonical text reads back the same


@pytest.mark.parametrize(("text", "says"), [
    ("10/parsec", "is not a rate"), ("0/s", "at least 1"), ("-1/s", "is not a rate"),
    ("10/0s", "at least 1"), ("", "is not a rate"), ("10", "is not a rate"),
    ("5/40d", "longer than"), ("99999999999/s", "per second"), ("1/s" * 30, "is not a rate"),
])
def test_bad_rates_are_refused_with_the_field(text: str, says: str) -> None:
    with pytest.raises(InvalidPayload, match=says) as e:
        parse_rate(text, "rate_limit")
    assert e.value.field == "rate_limit"


def test_declarations_check_their_fields() -> None:
    with pytest.raises(InvalidPayload) as e:
        Batch(max_size=0)
    assert e.value.field == "batch.max_size"
    with pytest.raises(InvalidPayload) as e:
        Concurrency(0)
    assert e.value.field == "concurrency.limit"
    with pytest.raises(InvalidPayload) as e:
        Concurrency(1, policy="drop")  # type: ignore[arg-type]
    assert e.value.field == "concurrency.policy"
    with pytest.raises(InvalidPayload) as e:
        RateLimit("10/s", burst=0)
    assert e.value.field == "rate_limit.burst"
    with pytest.raises(InvalidPayload) as e:
        Debounce(timedelta(0))
    assert e.value.field == "debounce.window"
    with pytest.raises(InvalidPayload, match="reserved") as e:
        RateLimit("10/s", name="hora.api")
    assert e.value.field == "rate_limit.name"
    with pytest.raises(InvalidPayload, match="not both"):
        FlowSpec.build("t", debounce=1.0, throttle=1.0)
    with pytest.raises(InvalidPayload, match="batched task cannot also"):
        FlowSpec.build("t", batch=Batch(10), rate_limit="1/s")
    with pytest.raises(InvalidPayload, match="same name"):
        FlowSpec.build("t", rate_limit=["1/s", "2/s"])


def test_gates_name_limits_and_compute_keys() -> None:
    spec = FlowSpec.build("mail.send", rate_limit=[RateLimit("20/s", name="smtp"),
                                                   RateLimit("3/h", key="user.id")],
                          concurrency=Concurrency(1, key="account"))
    assert spec is not None
    gates = spec.gates({"user": {"id": "u42"}, "account": "a1"})
    assert [(n, k) for n, k, _, _ in gates.rates] == [("smtp", ""), ("mail.send[user.id]", "u42")]
    assert gates.concurrency_key == "mail.send:account=a1"
    assert Gates.from_json(gates.json) == gates
    with pytest.raises(InvalidPayload, match="no field 'account'") as e:
        spec.gates({"user": {"id": "u42"}})
    assert e.value.field == "payload.account"


def test_flow_spec_survives_the_registry_round_trip() -> None:
    spec = FlowSpec.build("t", rate_limit=RateLimit("3/h", key="user_id", burst=2),
                          concurrency=Concurrency(2, key="a", policy="cancel_new"),
                          throttle=Throttle(30, key="a"))
    assert spec is not None
    back = FlowSpec.from_dict("t", spec.to_dict())
    assert back is not None and back.to_dict() == spec.to_dict()
    batched = FlowSpec.build("t", debounce=Debounce(5.0, key="p"), batch=Batch(10, 5.0, key="p"))
    assert batched is not None
    assert FlowSpec.from_dict("t", batched.to_dict()) == batched


def test_a_key_function_is_refused_where_the_code_is_missing() -> None:
    spec = FlowSpec.build("t", concurrency=Concurrency(1, key=lambda p: p["a"]))
    assert spec is not None
    assert spec.gates({"a": 1}).concurrency_key == "t:<lambda>=1"
    remote = FlowSpec.from_dict("t", spec.to_dict())
    assert remote is not None
    with pytest.raises(InvalidPayload, match="computes a flow-control key in code"):
        remote.gates({"a": 1})


def test_key_values_are_bounded() -> None:
    with pytest.raises(InvalidPayload, match="longer than"):
        key_value("k", {"k": "x" * 201}, task="t", what="is rate-limited")
    assert key_value("k", {"k": 5}, task="t", what="is rate-limited") == "5"


@settings(max_examples=200, deadline=None)
@given(count=st.integers(1, 50), period=st.sampled_from([1.0, 60.0, 3600.0]),
       burst=st.integers(1, 5),
       gaps=st.lists(st.integers(0, 400_000_000), min_size=1, max_size=300))
def test_gcra_never_admits_more_than_its_window_bound(count: int, period: float, burst: int,
                                                     gaps: list[int]) -> None:
    """Whatever the arrival pattern, admitted starts in any window of one period stay within
    ``window_bound`` (the documented promise), and a refusal names an instant in the future
    at which the same bucket admits."""
    rate = Rate(count, period)
    tat: int | None = None
    now = 0
    admitted: list[int] = []
    for gap in gaps:
        now += gap % (rate.interval_us * 3 + 1)
        ok, tat, next_at = gcra(tat, now, rate, burst)
        if ok:
            admitted.append(now)
        else:
            assert next_at > now
            assert gcra(tat, next_at, rate, burst)[0]
    window = int(period * 1_000_000)
    bound = window_bound(rate, burst, period)
    j = 0
    for i, start in enumerate(admitted):
        while admitted[j] <= start - window:
            j += 1
        assert i - j + 1 <= bound
