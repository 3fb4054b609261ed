"""BG/NBD and Gamma-Gamma: log-likelihoods, maximum-likelihood fits and per-customer expectations.

The formulas are the published ones, written from the papers (no code taken from other projects):

* BG/NBD: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
  Pareto/NBD Model", Marketing Science 24(2). Likelihood: eq. (6); P(alive): eq. (11) of the
  appendix note "Computing P(alive) Using the BG/NBD Model" (Fader, Hardie & Lee 2008); conditional
  expected purchases: eq. (10), with Gauss's hypergeometric function 2F1.
* Gamma-Gamma: Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base
  Analysis", JMR 42(4), and Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value".
  Likelihood of a customer's mean repeat spend: eq. (3) of the note; conditional expected spend:
  eq. (5).

Both fits maximise the log-likelihood in log-parameter space (so every parameter stays positive
without constraints) with L-BFGS-B and an analytic gradient. Identical rows are grouped and
weighted, which makes a fit on 100,000 customers take about as long as one on the few thousand
distinct (frequency, recency, T) rows they contain. Standard errors come from the inverse of the
observed information (a finite-difference Hessian of the analytic gradient).

Inputs are plain numpy arrays; ``jobs.customers.clv`` wraps them for DataFrames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special
from threadpoolctl import threadpool_limits

from jobs.errors import ConvergenceError, InsufficientDataError

__all__ = [
    "BgNbdFit",
    "GammaGammaFit",
    "bgnbd_conditional_expected_purchases",
    "bgnbd_expected_purchases",
    "bgnbd_log_likelihood",
    "bgnbd_p_alive",
    "fit_bgnbd_arrays",
    "fit_gamma_gamma_arrays",
    "gamma_gamma_conditional_spend",
    "gamma_gamma_log_likelihood",
    "group_rows",
]

# The optimiser works on log-parameters; these bounds (1e-6 .. 1e6 on the natural scale) keep
# every special function finite. A parameter that ends on a bound is reported, not trusted.
_LOG_BOUND = np.log(1e6)
# Largest gradient component (per customer, log-parameter scale) accepted as "converged".
_GRADIENT_TOLERANCE = 1e-4
# The fewest customers with repeat purchases for which a fit means anything.
MIN_REPEAT_BUYERS_BGNBD = 2
MIN_REPEAT_BUYERS_GAMMA_GAMMA = 10


@dataclass(frozen=True)
class BgNbdFit:
    """A fitted BG/NBD model.

    Attributes:
        r, alpha: shape and scale of the gamma distribution of purchase rates (alpha is in the
            summary's time unit: rates are purchases per ``time_unit``).
        a, b: the beta distribution of the probability of dropping out after each purchase.
        log_likelihood: the maximised log-likelihood over all customers.
        converged: whether the optimiser stopped at an interior optimum with a flat gradient.
            ``predict`` refuses a fit that did not converge.
        iterations: optimiser iterations used.
        message: what happened, and when not converged, what to try.
        n_customers: customers the fit saw.
        time_unit: the summary's time unit ("W", "D", ...), or None when it was not recorded.
        standard_errors: asymptotic standard errors of r, alpha, a, b (NaN where the observed
            information was not invertible).
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    converged: bool
    iterations: int
    message: str
    n_customers: int
    time_unit: str | None = None
    standard_errors: dict[str, float] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, float]:
        """The four parameters by name."""
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}

    def raise_if_unconverged(self) -> None:
        """Raise ConvergenceError when this fit must not be used."""
        if not self.converged:
            raise ConvergenceError(f"the BG/NBD fit did not converge: {self.message}")


@dataclass(frozen=True)
class GammaGammaFit:
    """A fitted Gamma-Gamma spend model.

    Attributes:
        p: shape of the gamma distribution of each transaction's value around the customer's mean.
        q, v: shape and scale of the gamma distribution of that per-customer scale across customers
            (``v`` is the paper's gamma; it is in the currency of the amounts).
        log_likelihood: the maximised log-likelihood over the repeat buyers.
        converged, iterations, message, n_customers, standard_errors: as for ``BgNbdFit``.
        frequency_monetary_correlation: Pearson correlation of frequency and mean spend among the
            repeat buyers; the model assumes they are independent, so a value far from 0 (say
            beyond +/-0.3) is worth a look.
    """

    p: float
    q: float
    v: float
    log_likelihood: float
    converged: bool
    iterations: int
    message: str
    n_customers: int
    standard_errors: dict[str, float] = field(default_factory=dict)
    frequency_monetary_correlation: float = 0.0

    @property
    def params(self) -> dict[str, float]:
        """The three parameters by name."""
        return {"p": self.p, "q": self.q, "v": self.v}

    @property
    def population_mean_spend(self) -> float:
        """Expected mean transaction value of a customer we know nothing about: p v / (q - 1)."""
        if self.q <= 1:
            return float("inf")
        return self.p * self.v / (self.q - 1)

    def raise_if_unconverged(self) -> None:
        """Raise ConvergenceError when this fit must not be used."""
        if not self.converged:
            raise ConvergenceError(f"the Gamma-Gamma fit did not converge: {self.message}")


# --------------------------------------------------------------------------------------------
# BG/NBD


def bgnbd_log_likelihood(
    params: tuple[float, float, float, float],
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Return each customer's BG/NBD log-likelihood (FHL 2005, eq. 6), row by row.

    The fit uses a grouped, faster form of the same expression; this one is the reference.

    Args:
        params: (r, alpha, a, b).
        x: repeat purchases in the calibration period.
        t_x: time of the last purchase, measured from the first.
        T: time from the first purchase to the end of calibration.
    """
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    repeat = x > 0
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    term_alive = special.betaln(a, b + x) - (r + x) * np.log(alpha + T)
    # The dropout term exists only for customers with a repeat purchase; b + x - 1 > 0 there.
    safe_x = np.where(repeat, x, 1.0)
    term_dropped = np.where(
        repeat,
        special.betaln(a + 1, b + safe_x - 1) - (r + safe_x) * np.log(alpha + t_x),
        -np.inf,
    )
    return common + np.logaddexp(term_alive, term_dropped)


@dataclass(frozen=True)
class _Grouped:
    """Distinct summary rows with their weights, and the distinct frequencies they use.

    Special functions (gammaln, digamma) depend on the frequency only; computing them once per
    distinct frequency (a few dozen values) instead of once per row is what makes a fit fast.
    """

    x_values: np.ndarray  # distinct frequencies
    x_index: np.ndarray  # per row: position of its frequency in x_values
    x: np.ndarray
    columns: tuple[np.ndarray, ...]  # the other columns of the distinct rows
    weight: np.ndarray  # how many customers each distinct row stands for
    weight_per_x: np.ndarray  # total weight per distinct frequency


def _grouped(x: np.ndarray, *columns: np.ndarray, weights: np.ndarray | None = None) -> _Grouped:
    (ux, *rest), weight, inverse = group_rows(x, *columns)
    if weights is not None:
        # Rows that already stand for several customers (the Spark engine's compressed summary).
        weight = np.bincount(inverse, weights=weights, minlength=len(ux))
    x_values, x_index = np.unique(ux, return_inverse=True)
    return _Grouped(
        x_values=x_values,
        x_index=x_index,
        x=ux,
        columns=tuple(rest),
        weight=weight,
        weight_per_x=np.bincount(x_index, weights=weight, minlength=len(x_values)),
    )


def _bgnbd_loglik_and_gradient(log_params: np.ndarray, data: _Grouped) -> tuple[float, np.ndarray]:
    """Total weighted log-likelihood (eq. 6) and its gradient with respect to the log-parameters."""
    params = np.exp(log_params)
    r, alpha, a, b = params
    xv, xi, x, w = data.x_values, data.x_index, data.x, data.weight
    t_x, T = data.columns
    psi = special.digamma
    # Per distinct frequency.
    safe_xv = np.maximum(xv, 1.0)  # the dropout term exists only for x > 0, where b + x - 1 > 0
    beta_alive = special.betaln(a, b + xv)
    beta_dropped = np.where(xv > 0, special.betaln(a + 1, b + safe_xv - 1), -np.inf)
    common_x = special.gammaln(r + xv) - special.gammaln(r) + r * np.log(alpha) - special.betaln(a, b)
    psi_abx = psi(a + b + xv)
    # Per distinct row.
    log_T = np.log(alpha + T)
    log_tx = np.log(alpha + t_x)
    term_alive = beta_alive[xi] - (r + x) * log_T
    term_dropped = beta_dropped[xi] - (r + x) * log_tx
    lse = np.logaddexp(term_alive, term_dropped)
    w_alive = np.exp(term_alive - lse)  # softmax weights of the two terms
    w_dropped = np.exp(term_dropped - lse)  # 0 where x = 0 (term is -inf)
    ll = float(data.weight_per_x @ common_x + w @ lse)
    ww_alive, ww_dropped = w * w_alive, w * w_dropped
    alive_x = np.bincount(xi, weights=ww_alive, minlength=len(xv))
    dropped_x = np.bincount(xi, weights=ww_dropped, minlength=len(xv))
    d_r = data.weight_per_x @ (psi(r + xv) - psi(r) + np.log(alpha)) - ww_alive @ log_T - ww_dropped @ log_tx
    d_alpha = data.weight_per_x.sum() * r / alpha - (ww_alive * (r + x)) @ (1 / (alpha + T))
    d_alpha -= (ww_dropped * (r + x)) @ (1 / (alpha + t_x))
    d_a = (
        alive_x @ (psi(a) - psi_abx)
        + dropped_x @ (psi(a + 1) - psi_abx)
        - data.weight_per_x.sum() * (psi(a) - psi(a + b))
    )
    d_b = (
        alive_x @ (psi(b + xv) - psi_abx)
        + dropped_x @ np.where(xv > 0, psi(b + safe_xv - 1) - psi_abx, 0.0)
        - data.weight_per_x.sum() * (psi(b) - psi(a + b))
    )
    return ll, np.array([d_r, d_alpha, d_a, d_b]) * params


def fit_bgnbd_arrays(
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    *,
    time_unit: str | None = None,
    weights: np.ndarray | None = None,
) -> BgNbdFit:
    """Fit BG/NBD by maximum likelihood to per-customer (x, t_x, T) arrays.

    Args:
        weights: how many customers each row stands for (default 1 each): the distinct
            (x, t_x, T) rows with their counts give the same fit as the customers themselves,
            which is how a cluster fits millions of customers on one driver.

    Raises:
        InsufficientDataError: fewer than two customers with a repeat purchase.
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    n = round(float(w.sum()))
    repeat_buyers = round(float(w[x > 0].sum()))
    if repeat_buyers < MIN_REPEAT_BUYERS_BGNBD:
        raise InsufficientDataError(
            f"BG/NBD needs customers who bought more than once to learn anything; found {repeat_buyers} "
            f"of {n} customers with a repeat purchase (need at least {MIN_REPEAT_BUYERS_BGNBD}). "
            "Use the historical value until there is more order history."
        )
    data = _grouped(x, t_x, T, weights=None if weights is None else w)

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = _bgnbd_loglik_and_gradient(log_params, data)
        return -ll / n, -grad / n

    # Starts: unit shapes, and alpha on the scale of the observation windows so that the mean
    # rate r / alpha starts near the observed one. A second start guards against a poor basin.
    x_total, T_total = (float(x.sum()), float(T.sum())) if weights is None else (float(w @ x), float(w @ T))
    mean_rate = max(x_total / max(T_total, 1e-9), 1e-6)
    starts = [np.log([1.0, 1.0 / mean_rate, 1.0, 1.0]), np.log([0.5, 0.5 / mean_rate, 0.5, 2.0])]
    names = ("r", "alpha", "a", "b")
    best = _minimise(objective, starts, bounds=4)
    params = np.exp(best.x)
    ses = _standard_errors(lambda lp: objective(lp)[1] * -n, best.x, names)
    converged, message = _judge(best, objective, names, n, ses)
    return BgNbdFit(
        r=float(params[0]),
        alpha=float(params[1]),
        a=float(params[2]),
        b=float(params[3]),
        log_likelihood=float(-best.fun * n),
        converged=converged,
        iterations=int(best.nit),
        message=message,
        n_customers=n,
        time_unit=time_unit,
        standard_errors=ses,
    )


def bgnbd_p_alive(
    params: tuple[float, float, float, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Return P(alive at T | x, t_x, T) (Fader, Hardie & Lee 2008, eq. 11).

    A customer without repeat purchases has P(alive) = 1 under BG/NBD: the model lets customers
    drop out only right after a purchase.
    """
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    repeat = x > 0
    safe_x = np.where(repeat, x, 1.0)
    log_odds_dead = (
        np.log(a) - np.log(b + safe_x - 1) + (r + safe_x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )
    return np.where(repeat, special.expit(-log_odds_dead), 1.0)


def bgnbd_expected_purchases(params: tuple[float, float, float, float], t: np.ndarray) -> np.ndarray:
    """Return E[X(t)] for a customer picked at random at the start (FHL 2005, eq. 9)."""
    r, alpha, a, b = params
    t = np.asarray(t, dtype=float)
    z = t / (alpha + t)
    a_ = _away_from_one(a)
    return (a_ + b - 1) / (a_ - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a_ + b - 1, z))


def bgnbd_conditional_expected_purchases(
    params: tuple[float, float, float, float],
    t: np.ndarray | float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Return E[Y(t) | x, t_x, T]: expected purchases in (T, T + t] (FHL 2005, eq. 10).

    ``t`` may be a scalar or an array that broadcasts against the customer arrays (e.g. shape
    ``(n, 1)`` customers against ``(1, k)`` horizons).
    """
    r, alpha, a, b = params
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    t = np.asarray(t, dtype=float)
    a_ = _away_from_one(a)
    z = t / (alpha + T + t)
    # ((alpha+T)/(alpha+T+t))^(r+x) = (1 - z)^(r+x); computed in logs to stay finite for large x.
    head = np.exp((r + x) * np.log1p(-z)) * special.hyp2f1(r + x, b + x, a_ + b + x - 1, z)
    numerator = (a_ + b + x - 1) / (a_ - 1) * (1 - head)
    repeat = x > 0
    safe_x = np.where(repeat, x, 1.0)
    odds_dead = np.where(
        repeat,
        np.exp(
            np.log(a_) - np.log(b + safe_x - 1) + (r + safe_x) * (np.log(alpha + T) - np.log(alpha + t_x))
        ),
        0.0,
    )
    return numerator / (1 + odds_dead)


def _away_from_one(a: float) -> float:
    # Eq. (9)/(10) have a removable singularity at a = 1 (0/0); a relative nudge of 1e-7 changes
    # the result far below any reported digit.
    return a if abs(a - 1.0) > 1e-7 else 1.0 + 1e-7


# --------------------------------------------------------------------------------------------
# Gamma-Gamma


def gamma_gamma_log_likelihood(
    params: tuple[float, float, float], x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """Return each repeat buyer's log-likelihood of mean spend ``m`` over ``x`` purchases.

    Fader & Hardie (2013), eq. (3); ``x > 0`` and ``m > 0`` are required.
    """
    p, q, v = params
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    px = p * x
    return (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(v + m * x)
    )


def _gamma_gamma_loglik_and_gradient(log_params: np.ndarray, data: _Grouped) -> tuple[float, np.ndarray]:
    """Total weighted log-likelihood (eq. 3) and its gradient with respect to the log-parameters."""
    params = np.exp(log_params)
    p, q, v = params
    xv, x, w = data.x_values, data.x, data.weight
    (m,) = data.columns
    psi = special.digamma
    # Per distinct frequency.
    pxv = p * xv
    gamma_x = special.gammaln(pxv + q) - special.gammaln(pxv) - special.gammaln(q) + q * np.log(v)
    psi_pxq = psi(pxv + q)
    psi_px = psi(pxv)
    # Per distinct row.
    log_m = np.log(m)
    log_x = np.log(x)
    log_vmx = np.log(v + m * x)
    px = p * x
    total_weight = data.weight_per_x.sum()
    ll = float(data.weight_per_x @ gamma_x + w @ ((px - 1) * log_m + px * log_x - (px + q) * log_vmx))
    wx = w * x
    d_p = data.weight_per_x @ (xv * (psi_pxq - psi_px)) + wx @ (log_m + log_x - log_vmx)
    d_q = data.weight_per_x @ psi_pxq - total_weight * (psi(q) - np.log(v)) - w @ log_vmx
    d_v = total_weight * q / v - w @ ((px + q) / (v + m * x))
    return ll, np.array([d_p, d_q, d_v]) * params


def fit_gamma_gamma_arrays(
    x: np.ndarray, m: np.ndarray, *, weights: np.ndarray | None = None
) -> GammaGammaFit:
    """Fit Gamma-Gamma to repeat buyers: ``x`` repeat purchases (> 0), mean spend ``m`` (> 0).

    Args:
        weights: how many customers each (x, m) row stands for (default 1 each).

    Raises:
        InsufficientDataError: fewer than 10 repeat buyers with a positive mean spend.
    """
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    n = round(float(w.sum()))
    if n < MIN_REPEAT_BUYERS_GAMMA_GAMMA:
        raise InsufficientDataError(
            f"the Gamma-Gamma spend model needs at least {MIN_REPEAT_BUYERS_GAMMA_GAMMA} customers "
            f"with repeat purchases of positive value; found {n}. Use the historical value until "
            "there is more order history."
        )
    data = _grouped(x, m, weights=None if weights is None else w)

    def objective(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        ll, grad = _gamma_gamma_loglik_and_gradient(log_params, data)
        return -ll / n, -grad / n

    # Method-of-moments flavoured start: p around 1..several, v so that p v / (q - 1) ~ mean spend.
    mean_spend = float(np.mean(m)) if weights is None else float(w @ m / w.sum())
    starts = [np.log([2.0, 3.0, mean_spend]), np.log([1.0, 2.0, mean_spend / 2])]
    names = ("p", "q", "v")
    best = _minimise(objective, starts, bounds=3, scale=np.log(max(mean_spend, 1.0)))
    params = np.exp(best.x)
    ses = _standard_errors(lambda lp: objective(lp)[1] * -n, best.x, names)
    converged, message = _judge(best, objective, names, n, ses)
    corr = _weighted_correlation(x, m, None if weights is None else w)
    return GammaGammaFit(
        p=float(params[0]),
        q=float(params[1]),
        v=float(params[2]),
        log_likelihood=float(-best.fun * n),
        converged=converged,
        iterations=int(best.nit),
        message=message,
        n_customers=n,
        standard_errors=ses,
        frequency_monetary_correlation=corr,
    )


def _weighted_correlation(x: np.ndarray, m: np.ndarray, w: np.ndarray | None) -> float:
    """Pearson correlation of x and m (rows weighted by ``w``); 0 when either does not vary."""
    if w is None:
        return float(np.corrcoef(x, m)[0, 1]) if np.std(x) > 0 and np.std(m) > 0 else 0.0
    total = w.sum()
    dx, dm = x - w @ x / total, m - w @ m / total
    sxx, smm = w @ (dx * dx), w @ (dm * dm)
    return float(w @ (dx * dm) / np.sqrt(sxx * smm)) if sxx > 0 and smm > 0 else 0.0


def gamma_gamma_conditional_spend(
    params: tuple[float, float, float], x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """Return E[M | p, q, v, m_x, x], the expected mean transaction value (Fader & Hardie 2013, eq. 5).

    ``(p v + m x p) / (p x + q - 1)``: a weighted average of the population mean ``p v / (q - 1)``
    and the customer's observed mean ``m``. Customers with ``x = 0`` get the population mean.
    Requires ``q > 1`` (otherwise the population mean spend is infinite).
    """
    p, q, v = params
    x = np.asarray(x, dtype=float)
    m = np.asarray(m, dtype=float)
    return p * (v + m * x) / (p * x + q - 1)


# --------------------------------------------------------------------------------------------
# shared machinery


def group_rows(*columns: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """Collapse identical rows of equal-length columns with one lexicographic sort.

    Returns:
        The distinct rows (as columns), how many times each occurs, and for every input row the
        position of its distinct row (so per-row results are ``distinct_result[inverse]``).
    """
    n = len(columns[0])
    if n == 0:
        return tuple(np.asarray(c, dtype=float) for c in columns), np.zeros(0), np.zeros(0, dtype=np.int64)
    order = np.lexsort(columns[::-1])
    ordered = [np.asarray(c)[order] for c in columns]
    changed = np.zeros(n, dtype=bool)
    changed[0] = True
    for column in ordered:  # one vectorised comparison per column (2-4 columns)
        changed[1:] |= column[1:] != column[:-1]
    starts = np.flatnonzero(changed)
    counts = np.diff(np.r_[starts, n]).astype(float)
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(changed) - 1
    return tuple(c[starts] for c in ordered), counts, inverse


def _minimise(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    starts: list[np.ndarray],
    *,
    bounds: int,
    scale: float = 0.0,
) -> optimize.OptimizeResult:
    """Run L-BFGS-B (log-parameter space) from the first start, and from the next ones only while
    no start has reached a clean optimum; keep the best finite result."""
    box = [(-_LOG_BOUND, _LOG_BOUND + scale)] * bounds
    best: optimize.OptimizeResult | None = None
    # L-BFGS-B on 3-4 parameters makes many tiny BLAS calls; with OpenBLAS threads on a busy
    # machine they spin and a 0.4 s fit took 3 s (measured on 2 shared cores). One thread is right.
    with np.errstate(all="ignore"), threadpool_limits(limits=1, user_api="blas"):
        for start in starts:
            result = optimize.minimize(
                objective,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=box,
                options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
            )
            if np.isfinite(result.fun) and (best is None or result.fun < best.fun):
                best = result
            clean = result.success and np.all(np.abs(result.jac) < _GRADIENT_TOLERANCE)
            if best is result and clean and np.all(np.abs(result.x) < _LOG_BOUND - 0.05):
                break
    if best is None:  # every start produced a non-finite likelihood
        result.success = False
        return result
    return best


def _judge(
    result: optimize.OptimizeResult,
    objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
    names: tuple[str, ...],
    n: int,
    standard_errors: dict[str, float],
) -> tuple[bool, str]:
    """Decide whether an optimiser result is a trustworthy maximum, and say what to do if not."""
    if not np.isfinite(result.fun):
        return False, (
            "the log-likelihood was not finite at any starting point; check that recency <= T, that "
            "all values are finite and in the summary's time unit"
        )
    with np.errstate(all="ignore"):
        _, grad = objective(result.x)
    # Within 5 % of a bound counts as on it: a flat likelihood lets the optimiser stop just short.
    at_bound = [name for name, value in zip(names, result.x, strict=True) if abs(value) >= _LOG_BOUND - 0.05]
    worst = float(np.max(np.abs(grad))) if np.all(np.isfinite(grad)) else float("inf")
    if at_bound:
        return False, (
            f"parameter(s) {', '.join(at_bound)} ran to the edge of the search range (1e-6 .. 1e6): "
            "the data cannot pin the model down. Check the time unit (weeks suit most B2C order "
            "histories), use a longer order history, or rely on the historical value"
        )
    if worst > _GRADIENT_TOLERANCE:
        return False, (
            f"the optimiser stopped ({result.message}) with the gradient still {worst:.2g} after "
            f"{result.nit} iterations; try a coarser time unit or more order history"
        )
    unidentified = [name for name in names if not np.isfinite(standard_errors.get(name, np.nan))]
    if unidentified:
        return False, (
            f"the likelihood is flat in {', '.join(unidentified)}: the data do not identify the model "
            "(for BG/NBD typically no sign of customers ever dropping out; for Gamma-Gamma order values "
            "that hardly differ between customers). Use a longer order history, or rely on the "
            "historical value"
        )
    return True, f"converged in {result.nit} iterations on {n} customers"


def _standard_errors(
    gradient: Callable[[np.ndarray], np.ndarray], log_params: np.ndarray, names: tuple[str, ...]
) -> dict[str, float]:
    """Standard errors on the natural scale from a central-difference Hessian in log space."""
    k = len(log_params)
    hessian = np.empty((k, k))
    step = 1e-5
    with np.errstate(all="ignore"):
        for i in range(k):  # k <= 4 parameters, not a per-customer loop
            shift = np.zeros(k)
            shift[i] = step
            hessian[:, i] = (gradient(log_params + shift) - gradient(log_params - shift)) / (2 * step)
    hessian = (hessian + hessian.T) / 2
    try:
        covariance = np.linalg.inv(-hessian)
    except np.linalg.LinAlgError:
        return {name: float("nan") for name in names}
    variances = np.diag(covariance)
    params = np.exp(log_params)
    # Delta method: se(theta) = theta * se(log theta).
    return {
        name: float(param * np.sqrt(var)) if var > 0 else float("nan")
        for name, param, var in zip(names, params, variances, strict=True)
    }
