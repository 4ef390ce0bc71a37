"""Figures of the scaling report, drawn from `fits.json` alone (matplotlib Agg; never imports torch).

The paper showed NDCG@5 against training FLOPs coloured by model or data size with an optimal
envelope; we draw that for every fitted metric, plus what it lacked: fitted laws with bootstrap
bands, iso-FLOP profiles from the joint law (only when both exponents are identified), its
residuals, and the extrapolation test. Each function writes one PNG and returns its path;
`all_figures` pairs each with a caption that says what it shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def log_axis(ax: Any, which: str = "x") -> None:
    """Log scale with few, compact labels: majors at 1, 2, 5 × 10^k when the data span under two
    decades (else at powers of ten, thinned to ≤ 6), written "2e12"; minor ticks unlabelled. The
    default labels every minor tick on a short range and the FLOP labels then overlap."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    short = np.log10(max(hi, 1e-300) / max(lo, 1e-300)) < 2
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if short else (1.0,), numticks=6))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}".replace("e+0", "e").replace("e+", "e")))
    axis.set_minor_formatter(NullFormatter())


def _save(fig: Any, path: Path) -> Path:
    for ax in fig.axes:
        if ax.get_xscale() == "log":
            log_axis(ax, "x")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _back(m: dict[str, Any], v: np.ndarray) -> np.ndarray:
    """Fitted quantity → metric (1 − err for higher-is-better metrics)."""
    return 1.0 - v if m["higher_is_better"] else v


def metric_vs_flops(metric: str, m: dict[str, Any], out: Path, colour_by: str) -> Path:
    """Every run's metric vs FLOPs, coloured by N or D, with the compute-efficient frontier and L(C)."""
    plt = _plt()
    runs = {k: np.asarray(v, dtype=float) for k, v in m["runs"].items() if k in "ndcy"}
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    sc = ax.scatter(runs["c"], runs["y"], c=np.log10(runs[colour_by]), cmap="viridis", s=36, zorder=3)
    fig.colorbar(sc, ax=ax, label=f"log10 {'N (non-emb. params)' if colour_by == 'n' else d_label(m)}")
    law = m.get("univariate", {}).get("C", {})
    if "points" in law:
        idx = np.asarray(law["points"], dtype=int)
        order = idx[np.argsort(runs["c"][idx])]
        ax.plot(runs["c"][order], runs["y"][order], "k--", lw=1, label="frontier (runs)")
    if law.get("band"):
        x = np.asarray(law["band"]["x"])
        coef = law["coef"]
        ax.plot(x, _back(m, coef["E"] + coef["A_C"] * x ** -coef["alpha_C"]), "r-", label="fit L(C)")
        ax.fill_between(
            x,
            _back(m, np.asarray(law["band"]["lo"])),
            _back(m, np.asarray(law["band"]["hi"])),
            color="r",
            alpha=0.15,
            label="95% CI",
        )
    ax.set(xscale="log", xlabel="training FLOPs", ylabel=metric, title=f"{metric} vs compute")
    _data_ylim(ax, runs["y"])
    _legend(ax)
    return _save(fig, out)


def _data_ylim(ax: Any, y: np.ndarray) -> None:
    """Keep the runs readable: a band that explodes beyond the data would flatten them."""
    span = max(float(np.ptp(y)), 1e-3 * float(np.abs(y).max()))
    ax.set_ylim(float(y.min()) - 0.3 * span, float(y.max()) + 0.3 * span)


def d_label(m: dict[str, Any]) -> str:
    """What D counts differs by table: a v2 fit (one per encoder, so its metric block names one) counts
    unique training targets, repeated epochs not being new data; a v1 fit counts targets seen."""
    return "unique training targets D" if "encoder" in m else "targets seen D"


def fitted_curves(metric: str, m: dict[str, Any], out: Path) -> Path:
    """The three univariate laws on their envelope points, with bootstrap bands."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    labels = {"N": ("n", "non-embedding params N"), "D": ("d", d_label(m)), "C": ("c", "FLOPs C")}
    for ax, (name, (col, xlabel)) in zip(axes, labels.items(), strict=True):
        x_all = np.asarray(m["runs"][col], dtype=float)
        y_all = np.asarray(m["runs"]["y"], dtype=float)
        ax.scatter(x_all, y_all, color="0.75", s=16, label="all runs")
        law = m.get("univariate", {}).get(name, {})
        if "points" in law:
            idx = np.asarray(law["points"], dtype=int)
            ax.scatter(x_all[idx], y_all[idx], color="C0", s=30, zorder=3, label="envelope")
        if law.get("band"):
            x = np.asarray(law["band"]["x"])
            c = law["coef"]
            lo, hi = law["ci95"].get(f"alpha_{name}", (np.nan, np.nan))
            flagged = f"alpha_{name}" in law.get("unidentified", [])
            ax.plot(
                x,
                _back(m, c["E"] + c[f"A_{name}"] * x ** -c[f"alpha_{name}"]),
                "r--" if flagged else "r-",
                label="fit: α not identified"
                if flagged
                else f"α={c[f'alpha_{name}']:.3f} [{lo:.3f}, {hi:.3f}]",
            )
            ax.fill_between(
                x,
                _back(m, np.asarray(law["band"]["lo"])),
                _back(m, np.asarray(law["band"]["hi"])),
                color="r",
                alpha=0.15,
            )
        ax.set(xscale="log", xlabel=xlabel, ylabel=metric)
        _data_ylim(ax, y_all)
        _legend(ax)
    return _save(fig, out)


def iso_flop(metric: str, m: dict[str, Any], out: Path) -> Path:
    """Iso-FLOP profiles of the joint law: metric vs N at fixed C (D = C/(k·N^γ)), optimum marked."""
    plt = _plt()
    coef, rel = m["joint"]["coef"], m["compute_optimal"]["flops_relation"]
    runs = {k: np.asarray(v, dtype=float) for k, v in m["runs"].items() if k in "ndcy"}
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    budgets = np.geomspace(runs["c"].min(), runs["c"].max() * 10, 5)
    n_grid = np.geomspace(runs["n"].min() / 10, runs["n"].max() * 10, 200)
    for i, c in enumerate(budgets):
        d = c / (rel["k"] * n_grid ** rel["gamma"])
        fit = coef["E"] + coef["A_N"] * n_grid ** -coef["alpha_N"] + coef["A_D"] * d ** -coef["alpha_D"]
        y = _back(m, fit)
        ax.plot(n_grid, y, color=f"C{i}", label=f"C={c:.2g}")
        j = int(np.argmin(fit))
        ax.plot(n_grid[j], y[j], "o", color=f"C{i}")
    ax.scatter(runs["n"], runs["y"], color="k", s=10, label="runs")
    _data_ylim(ax, runs["y"])  # profiles explode at the edges
    ax.set(
        xscale="log", xlabel="non-embedding params N", ylabel=metric, title="iso-FLOP profiles (joint fit)"
    )
    _legend(ax)
    return _save(fig, out)


def residuals(metric: str, m: dict[str, Any], out: Path) -> Path:
    """Log residuals of the joint fit against FLOPs, coloured by N."""
    plt = _plt()
    c = np.asarray(m["runs"]["c"], dtype=float)
    r = np.asarray(m["joint"]["residuals_log"], dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    sc = ax.scatter(c, r, c=np.log10(np.asarray(m["runs"]["n"], dtype=float)), cmap="viridis", s=30)
    fig.colorbar(sc, ax=ax, label="log10 N")
    ax.axhline(0, color="k", lw=0.8)
    ax.set(
        xscale="log",
        xlabel="training FLOPs",
        ylabel="log(actual) − log(fit)",
        title=f"joint-fit residuals ({m['fitted_quantity']})",
    )
    return _save(fig, out)


def extrapolation(metric: str, m: dict[str, Any], out: Path) -> Path:
    """Held-out runs beyond the fitted range: predicted vs actual for the joint law (with its 95%
    bootstrap prediction interval) and the two baselines."""
    plt = _plt()
    ex = m["extrapolation"]
    fig, ax = plt.subplots(figsize=(5.6, 4.6))
    actual = np.asarray(ex["actual"])
    values = [actual]
    for i, (name, pred) in enumerate(ex["predicted"].items()):
        pred = np.asarray(pred)
        values.append(pred)
        err = None
        if i == 0 and "interval_lo" in ex:
            lo, hi = np.asarray(ex["interval_lo"]), np.asarray(ex["interval_hi"])
            err = np.vstack([np.maximum(pred - lo, 0), np.maximum(hi - pred, 0)])
            values += [lo, hi]
        ax.errorbar(actual, pred, yerr=err, fmt="os^"[i % 3], color=f"C{i}", ms=6, capsize=3, label=name)
    lo, hi = min(v.min() for v in values), max(v.max() for v in values)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="perfect prediction")
    ax.set(xlabel=f"actual {metric} (held-out runs)", ylabel=f"predicted {metric}")
    _legend(ax)
    return _save(fig, out)


def _captions(metric: str, m: dict[str, Any]) -> dict[str, str]:
    n_runs = len(m["runs"]["y"])
    ex = m.get("extrapolation", {})
    return {
        "by_N": f"{metric} of each of the {n_runs} fitted runs against training FLOPs, coloured by "
        "model size N; dashed: the compute-efficient frontier; red: the law L(C) fitted on it, "
        "band = 95% bootstrap CI.",
        "by_D": f"The same runs coloured by data size ({d_label(m)}).",
        "fits": f"{metric} against N, D and C: grey = every run, blue = the envelope the univariate "
        "law is fitted on (best run per N, per D, compute frontier); red = the law with its 95% "
        "bootstrap band (dashed, without a value, when its exponent fails the identification tests).",
        "isoflop": f"Iso-FLOP profiles of the joint law: predicted {metric} against N at five fixed "
        "compute budgets (D = C/(k·N^γ)); dots mark each budget's optimum; black = the runs.",
        "residuals": "Log residuals of the joint law L(N, D) on every fitted run, against FLOPs, "
        "coloured by N; a trend means the law's form misses something.",
        "extrapolation": "True extrapolation test: held-out runs (never fitted, "
        f">= {ex.get('n_factor', 2):g}x the largest fitted N and >= {ex.get('c_factor', 4):g}x its "
        "compute), actual against predicted by the joint law (bars: 95% bootstrap prediction "
        "interval) and by the two baselines.",
    }


def all_figures(fits: dict[str, Any], out_dir: Path) -> dict[str, list[tuple[Path, str]]]:
    """Every figure for every fitted metric; returns {metric: [(png path, caption)]}."""
    figs: dict[str, list[tuple[Path, str]]] = {}
    for metric, m in fits["metrics"].items():
        if "runs" not in m:
            continue
        safe = metric.replace("@", "at").replace(":", "_")
        cap = _captions(metric, m)
        paths = [
            (metric_vs_flops(metric, m, out_dir / f"{safe}_vs_flops_by_N.png", "n"), cap["by_N"]),
            (metric_vs_flops(metric, m, out_dir / f"{safe}_vs_flops_by_D.png", "d"), cap["by_D"]),
            (fitted_curves(metric, m, out_dir / f"{safe}_fits.png"), cap["fits"]),
        ]
        if "a" in m.get("compute_optimal", {}):
            paths.append((iso_flop(metric, m, out_dir / f"{safe}_isoflop.png"), cap["isoflop"]))
        if "residuals_log" in m.get("joint", {}):
            paths.append((residuals(metric, m, out_dir / f"{safe}_residuals.png"), cap["residuals"]))
        if "actual" in m.get("extrapolation", {}):
            paths.append(
                (extrapolation(metric, m, out_dir / f"{safe}_extrapolation.png"), cap["extrapolation"])
            )
        figs[metric] = paths
    return figs
