"""95% intervals of benchmark accuracies: Wilson for right/wrong counts, a seeded row bootstrap for averages, and
every scorer's result carries them."""
import numpy as np
import pytest

from adajudge.eval import score_judgebench, score_rewardbench, score_rm_bench
from adajudge.eval.intervals import bootstrap, wilson

Z2 = 1.959963984540054**2


@pytest.mark.parametrize(("right", "total", "expected"), [
    # Closed forms of the Wilson score interval: with no success the upper end is z²/(n + z²), with all of them
    # the lower end is n/(n + z²); at half, 1/2 ± z·sqrt(1/(4n) + z²/(4n²)) / (1 + z²/n).
    (0, 10, (0.0, 100 * Z2 / (10 + Z2))),
    (10, 10, (100 * 10 / (10 + Z2), 100.0)),
    (5, 10, tuple(100 * (0.5 + sign * Z2**0.5 * (1 / 40 + Z2 / 400) ** 0.5 / (1 + Z2 / 10)) for sign in (-1, 1))),
])
def test_wilson_matches_its_closed_forms(right, total, expected):
    assert wilson(right, total) == pytest.approx(expected, abs=1e-9)


def test_wilson_covers_the_true_accuracy_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    for share, total in ((0.3, 50), (0.9, 30)):
        draws = rng.binomial(total, share, size=4000)
        covered = np.mean([low <= 100 * share <= high for low, high in (wilson(k, total) for k in draws)])
        assert 0.93 <= covered <= 0.975, (share, total, covered)


def test_bootstrap_is_seeded_contains_the_estimate_and_narrows_with_more_rows():
    rng = np.random.default_rng(1)
    few, many = rng.random(20) < 0.6, rng.random(2000) < 0.6

    def mean(strata):
        return {"acc": 100 * strata["rows"].mean()}

    small = bootstrap({"rows": few}, mean)["acc"]
    assert small == bootstrap({"rows": few}, mean)["acc"]
    assert small[0] <= 100 * few.mean() <= small[1]
    large = bootstrap({"rows": many}, mean)["acc"]
    assert large[1] - large[0] < (small[1] - small[0]) / 5
    assert bootstrap({"rows": np.ones(7)}, mean)["acc"] == [100.0, 100.0]


def rm_row(i, domain):
    return {"prompt": f"q{i}", "chosen": [f"c{i}", f"cc{i}", f"ccc{i}"], "rejected": [f"r{i}", f"rr{i}", f"rrr{i}"],
            "domain": domain}


def test_every_scorer_result_carries_an_interval_around_each_accuracy():
    def noisy(prompts, responses):
        return [hash((p, r)) % 7 for p, r in zip(prompts, responses)]

    rm = score_rm_bench([rm_row(i, "chat" if i % 2 else "safety-refuse") for i in range(40)], noisy)
    for scores in (rm, rm["pooled"], *rm["domains"].values()):
        for key in ("hard", "normal", "easy", "avg"):
            low, high = scores["ci95"][key]
            assert low <= scores[key] <= high
    jb_rows = [{"question": f"q{i}", "response_A": f"a{i}", "response_B": f"b{i}", "label": "A>B" if i % 3 else "B>A",
                "source": "livebench-math" if i % 2 else "mmlu-pro"} for i in range(30)]
    jb = score_judgebench(jb_rows, reward_fn=noisy)
    assert jb["ci95_method"] == "wilson" and set(jb["ci95"]) == {"overall", "mmlu-pro", "livebench-math"}
    assert all(jb["ci95"][key][0] <= jb[key] <= jb["ci95"][key][1] for key in jb["ci95"])
    rb_rows = [{"prompt": f"q{i}", "chosen": f"c{i}", "rejected": f"r{i}", "subset": s}
               for i, s in enumerate(["alpacaeval-easy", "math-prm", "hep-go", "donotanswer"] * 10)]
    rb = score_rewardbench(rb_rows, noisy)
    for key in ("overall", "Chat", "Safety", "Reasoning"):
        assert rb["ci95"][key][0] <= rb[key] <= rb["ci95"][key][1]
    assert rb["ci95"]["subsets"]["math-prm"] == wilson(round(rb["subsets"]["math-prm"] / 10), 10)
