"""Routing arithmetic of deployments: weighted picks (statistics), sticky users (stable hashing,
minimal movement when weights change), weight changes and validation."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from herald.serving.deployments.models import (
    InvalidDeployment,
    Target,
    apply_weights,
    parse_deployment,
    pick,
    user_point,
)


def test_pick_is_the_cumulative_slice_of_the_point() -> None:
    w = [90.0, 10.0]
    assert pick(w, 0.0) == 0 and pick(w, 0.899) == 0
    assert pick(w, 0.9) == 1 and pick(w, 0.999999) == 1
    assert pick([0.0, 5.0, 0.0], 0.0) == 1  # a zero weight never wins
    assert pick([3.0, 0.0], 0.9999999) == 0
    assert pick([1.0, 1.0, 0.0], 1.0) == 1  # the last positive weight at the edge


@pytest.mark.parametrize("weights", [[90.0, 10.0], [50.0, 50.0], [70.0, 20.0, 10.0], [1.0, 99.0]])
def test_weighted_pick_statistics(weights: list[float]) -> None:
    random.seed(1234)
    n = 20_000
    got = Counter(pick(weights) for _ in range(n))
    total = sum(weights)
    for i, w in enumerate(weights):
        p = w / total
        sd = math.sqrt(p * (1 - p) / n)
        assert abs(got[i] / n - p) < 5 * sd + 1e-9, (i, got[i] / n, p)


def test_user_points_are_stable_uniform_and_per_deployment() -> None:
    assert user_point("chat", "alice") == user_point("chat", "alice")
    # pinned value: the hash must not change between releases (users would switch versions)
    assert user_point("chat", "alice") == pytest.approx(0.44843380418262596, abs=0)
    assert user_point("chat", "alice") != user_point("other", "alice")
    points = [user_point("chat", f"user-{i}") for i in range(20_000)]
    assert all(0.0 <= x < 1.0 for x in points)
    deciles = Counter(int(x * 10) for x in points)
    assert all(abs(c / 20_000 - 0.1) < 0.01 for c in deciles.values())  # ~ uniform


def test_sticky_users_split_like_the_weights_and_move_minimally() -> None:
    users = [f"u{i}" for i in range(10_000)]
    before = {u: pick([90.0, 10.0], user_point("chat", u)) for u in users}
    share = sum(before.values()) / len(users)
    assert 0.09 < share < 0.11
    after = {u: pick([80.0, 20.0], user_point("chat", u)) for u in users}
    assert all(after[u] == 1 for u in users if before[u] == 1)  # canary users stay
    moved = sum(before[u] != after[u] for u in users) / len(users)
    assert 0.08 < moved < 0.12  # only the changed 10 % slice moves


def targets() -> list[Target]:
    return [
        Target(model="models:/m@champion", weight=90, version="models:/m/1"),
        Target(model="models:/m/2", weight=10, version="models:/m/2"),
    ]


def test_apply_weights_by_uri_or_resolved_version() -> None:
    out = apply_weights(targets(), {"models:/m/1": 0, "models:/m/2": 100})
    assert [t.weight for t in out] == [0, 100]
    out = apply_weights(targets(), {"models:/m@champion": 50})
    assert [t.weight for t in out] == [50, 10]
    assert [t.weight for t in targets()] == [90, 10]  # the input is not changed


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"models:/m/9": 5}, "unknown target"),
        ({"models:/m/1": 120}, "within 0..100"),
        ({"models:/m/1": 0, "models:/m/2": 0}, "above 0"),
    ],
)
def test_apply_weights_errors(weights: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidDeployment, match=message):
        apply_weights(targets(), weights)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "bad name", "targets": [{"model": "models:/m/1"}]}, "invalid deployment name"),
        ({"name": "d", "targets": []}, "targets"),
        ({"name": "d", "targets": [{"model": "m/1"}]}, "not a registry URI"),
        ({"name": "d", "targets": [{"model": "models:/m/1", "weight": 0}]}, "above 0"),
        ({"name": "d", "targets": [{"model": "models:/m/1"}] * 2}, "listed twice"),
        ({"name": "d", "targets": [{"model": "models:/m/1", "replicas": 0}]}, "replicas"),
    ],
)
def test_invalid_deployments_name_the_problem(data: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidDeployment, match=message) as exc:
        parse_deployment(data)  # type: ignore[arg-type]
    assert exc.value.status == 422


def test_target_alias_and_key() -> None:
    t = Target(model="models:/m@champion")
    assert t.alias == ("m", "champion") and t.key == "models:/m@champion"
    assert Target(model="models:/m/2", version="models:/m/2").alias is None
