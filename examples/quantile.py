"""Quantile regression with the pinball loss: a 10 %-90 % band on noisy data.

The noise grows with x (heteroscedastic), so a single MSE fit says nothing about
the spread; two pinball fits, q = 0.1 and q = 0.9, trace the band that holds 80 %
of the targets, and each covers its share of held-out rows (q = 0.9: ~90 %).

    python examples/quantile.py [--xp numpy|torch|array_api_strict|cupy] [--plot quantile.png]
"""

import argparse

import numpy as np

import nnbackprop as nb


def noisy_data(n=2000, seed=0):
    """x uniform in [-2, 2], y = sin(2x) + (0.2 + 0.3 |x|) * noise, as (N, 1) float64."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, (n, 1))
    y = np.sin(2 * x) + (0.2 + 0.3 * np.abs(x)) * rng.standard_normal((n, 1))
    return x, y


def fit_quantile(q, x, y, xp="numpy", device=None, seed=0, epochs=80, batch_size=64):
    model = nb.mlp([1, 32, 32, 1], "tanh", xp=xp, device=device, dtype="float64", seed=seed)
    m = model.xp
    model.fit(m.asarray(x, device=model.device), m.asarray(y, device=model.device), loss=nb.losses.Pinball(q),
              optimizer=nb.optim.Adam(1e-2), epochs=epochs, batch_size=batch_size, seed=seed, progress=False)
    return model


def main(xp="numpy", device=None, seed=0, epochs=80, plot=None, n=2000, batch_size=64):
    x, y = noisy_data(n=n, seed=seed)
    x_te, y_te = noisy_data(n=1000, seed=seed + 1)  # held out
    coverage = {}
    models = {}
    for q in (0.1, 0.9):
        models[q] = fit_quantile(q, x, y, xp, device, seed, epochs, batch_size)
        m = models[q].xp
        pred = nb._compat.to_host(models[q].predict(m.asarray(x_te, device=models[q].device)))
        coverage[q] = float(np.mean(y_te <= pred))
        print(f"q = {q}: {coverage[q]:.1%} of held-out targets lie below the predicted quantile")
    if plot:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(7, 4.5), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        grid = np.linspace(-2, 2, 200)[:, None]
        ax.scatter(x_te[:, 0], y_te[:, 0], s=3, alpha=0.3, color="0.4", label="held-out rows")
        for q, style in ((0.1, "C0"), (0.9, "C3")):
            m = models[q].xp
            g = nb._compat.to_host(models[q].predict(m.asarray(grid, device=models[q].device)))
            ax.plot(grid[:, 0], g[:, 0], style, label=f"q = {q} (covers {coverage[q]:.0%})")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title("pinball loss: the 10 % and 90 % quantiles")
        ax.legend(loc="upper left")
        fig.savefig(plot, dpi=100)
        print(f"plotted {plot}")
    return coverage


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xp", default="numpy")
    p.add_argument("--plot", default=None)
    args = p.parse_args()
    main(args.xp, plot=args.plot)
