"""`modelport experiments plan` as a user runs it: the sizes it prints are statsmodels' power
solutions rounded up, and a bad option is named in the error."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable

from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_plan_for_a_rate_is_the_normal_power_solution(cli: Cli) -> None:
    done = cli(
        "experiments", "plan", "--baseline", "0.1", "--mde", "0.01", "--power", "0.8", "--json"
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    solved = NormalIndPower().solve_power(
        effect_size=proportion_effectsize(0.11, 0.1), alpha=0.05, power=0.8, ratio=1.0
    )
    assert plan["metric"] == "proportion"
    assert plan["per_group"] == math.ceil(solved) == 14745
    assert plan["total"] == 2 * plan["per_group"]
    assert [size["method"] for size in plan["sizes"]] == ["normal"]

    table = cli("experiments", "plan", "--baseline", "0.1", "--mde", "0.01")
    assert table.returncode == 0, table.stderr
    assert "14,745" in table.stdout
    assert "29,490" in table.stdout


def test_plan_for_a_mean_reports_the_normal_and_the_t_test_sizes(cli: Cli) -> None:
    done = cli("experiments", "plan", "--sd", "2.5", "--mde", "0.3", "--alpha", "0.01", "--json")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    sizes = {size["method"]: size for size in plan["sizes"]}
    d = 0.3 / 2.5
    normal = NormalIndPower().solve_power(effect_size=d, alpha=0.01, power=0.8, ratio=1.0)
    t = TTestIndPower().solve_power(effect_size=d, alpha=0.01, power=0.8, ratio=1.0)
    assert sizes["normal"]["per_group"] == math.ceil(normal)
    assert sizes["t"]["per_group"] == math.ceil(t)
    assert (plan["per_group"], plan["total"]) == (sizes["t"]["per_group"], 2 * math.ceil(t))

    table = cli("experiments", "plan", "--sd", "2.5", "--mde", "0.3", "--alpha", "0.01")
    assert "t-test" in table.stdout
    assert f"{math.ceil(t):,}" in table.stdout


def test_a_bad_option_exits_1_naming_it(cli: Cli) -> None:
    done = cli("experiments", "plan", "--baseline", "1.2", "--mde", "0.01")
    assert done.returncode == 1
    assert "error: Invalid input: --baseline must be strictly between 0 and 1" in done.stderr
    assert "Traceback" not in done.stderr
    both = cli("experiments", "plan", "--baseline", "0.1", "--sd", "2", "--mde", "0.01")
    assert both.returncode == 1
    assert "exactly one of them" in both.stderr
    missing = cli("experiments", "plan", "--baseline", "0.1")
    assert missing.returncode == 2
    assert "--mde" in missing.stderr
