"""Coverage of 95% bootstrap intervals on small benchmark cells: percentile (the old hand-written loop)
vs BCa (`scipy.stats.bootstrap`, what `gavel bench` uses).

Simulates accuracy cells (Bernoulli hits with a known rate) and Pearson cells (bivariate normal scores with
a known correlation) and prints how often each interval holds the true value. 95% is the target.

    python benchmarks/bootstrap_coverage.py [--trials 400] [--seed 0]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from scipy import stats

from gavel.bench.metrics import _vector_pearson


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x.mean(axis=axis)


def _interval(data: tuple[np.ndarray, ...], statistic, method: str, rng: np.random.Generator) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ci = stats.bootstrap(data, statistic, paired=len(data) > 1, method=method, n_resamples=1000, rng=rng)
    return ci.confidence_interval.low, ci.confidence_interval.high


def coverage(kind: str, n: int, truth: float, trials: int, rng: np.random.Generator) -> dict[str, float]:
    held = {"percentile": 0, "BCa": 0}
    for _ in range(trials):
        if kind == "accuracy":
            data: tuple[np.ndarray, ...] = ((rng.random(n) < truth).astype(float),)
            statistic = _mean
        else:
            x, y = rng.multivariate_normal([0, 0], [[1, truth], [truth, 1]], size=n).T
            data, statistic = (x, y), _vector_pearson
        for method in held:
            low, high = _interval(data, statistic, method, rng)
            held[method] += bool(low <= truth <= high)
    return {method: count / trials for method, count in held.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{'cell':<24} {'n':>4} {'percentile':>11} {'BCa':>6}   ({args.trials} trials, target 0.95)")
    for kind, n, truth in (("accuracy", 25, 0.8), ("accuracy", 50, 0.9), ("pearson", 25, 0.5),
                           ("pearson", 50, 0.7)):
        got = coverage(kind, n, truth, args.trials, rng)
        print(f"{kind + f' (true {truth})':<24} {n:>4} {got['percentile']:>11.3f} {got['BCa']:>6.3f}")


if __name__ == "__main__":
    main()
