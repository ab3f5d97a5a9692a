"""Retry maths: every delay inside its bounds, caps that only grow, jitter inside its range."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hora.errors import InvalidPayload
from hora.retry import RetryPolicy

policies = st.builds(
    RetryPolicy,
    max_attempts=st.integers(1, 50),
    backoff=st.sampled_from(["exponential", "linear", "fixed"]),
    base=st.floats(0, 1000, allow_nan=False),
    factor=st.floats(1, 10, allow_nan=False),
    max_delay=st.floats(0, 86_400, allow_nan=False),
    jitter=st.sampled_from(["full", "equal", "none"]),
)


@given(policies, st.integers(1, 10_000), st.integers(0, 2**32))
def test_delay_is_within_zero_and_the_cap(policy: RetryPolicy, attempt: int, seed: int) -> None:
    d = policy.delay(attempt, random.Random(seed))
    cap = policy.cap(attempt)
    assert 0 <= d <= cap <= policy.max_delay
    if policy.jitter == "equal":
        assert d >= cap / 2
    if policy.jitter == "none":
        assert d == cap


@given(policies, st.integers(1, 1000))
def test_caps_never_shrink(policy: RetryPolicy, attempt: int) -> None:
    assert policy.cap(attempt + 1) >= policy.cap(attempt)


@given(st.floats(0.01, 100), st.floats(1.1, 4), st.integers(1, 30))
def test_exponential_cap_grows_by_factor_until_max(base: float, factor: float, n: int) -> None:
    p = RetryPolicy(base=base, factor=factor, max_delay=3600, jitter="none")
    assert p.cap(n) == pytest.approx(min(3600, base * factor ** (n - 1)))


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert RetryPolicy(base=1, factor=10, max_delay=60).cap(100_000) == 60


def test_full_jitter_spreads_over_the_whole_range() -> None:
    p = RetryPolicy(base=1, factor=2, max_delay=100, jitter="full")
    rng = random.Random(7)
    draws = [p.delay(5, rng) for _ in range(2000)]  # cap 16
    assert min(draws) < 2 and max(draws) > 14


def test_non_retryable_types_by_class_or_name() -> None:
    p = RetryPolicy(non_retryable=(KeyError, "builtins.TypeError"))
    assert not p.is_retryable(KeyError("x"))
    assert not p.is_retryable(TypeError("x"))
    assert p.is_retryable(ValueError("x"))

    class Sub(KeyError):
        pass

    assert not p.is_retryable(Sub())
    assert not p.should_retry(1, KeyError())
    assert p.should_retry(4, ValueError()) and not p.should_retry(5, ValueError())


def test_round_trips_through_json() -> None:
    p = RetryPolicy(max_attempts=7, backoff="linear", base=2, non_retryable=(KeyError,))
    q = RetryPolicy.from_dict(p.to_dict())
    assert q.to_dict() == p.to_dict()
    assert not q.is_retryable(KeyError())


@pytest.mark.parametrize("kwargs,message", [
    ({"max_attempts": 0}, "max_attempts"),
    ({"base": -1}, "retry.base: must be at least 0"),
    ({"base": 1e308}, "retry.base: .* at most 86400"),
    ({"max_delay": float("inf")}, "retry.max_delay"),
    ({"factor": 0.5}, "factor"),
    ({"factor": float("nan")}, "retry.factor"),
    ({"factor": 1e308}, "retry.factor: must be between 1 and 100"),
    ({"max_attempts": 10**30}, "retry.max_attempts: must be between 1 and 1000"),
    ({"backoff": "random"}, "backoff"),
    ({"jitter": "lots"}, "jitter"),
])
def test_invalid_policies_are_rejected_clearly(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_unknown_fields_in_stored_policy_are_rejected() -> None:
    with pytest.raises(InvalidPayload, match="unknown"):
        RetryPolicy.from_dict({"max_attempts": 2, "tries": 3})
