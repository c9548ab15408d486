"""Forecast a real time series with RNN, LSTM and GRU — torch.nn and fused_rnn side by side.

The data is the weekly Mauna Loa CO2 record (1958-2001) that ships with statsmodels
(`statsmodels.datasets.co2`; nothing is downloaded). Each model reads the last
`--window` weeks, relative to the latest of them, and predicts the change to the next
week (so the rising trend carries over to the later validation years); the first 80%
of the record trains, the last 20% validates, and the persistence forecast (next week
= this week) is reported as the baseline to beat. For each cell (RNN, LSTM, GRU) a one-layer and a two-layer model is
trained twice from the same seed, once with torch.nn and once with fused_rnn.convert,
and the script reports per model: validation RMSE (ppm), time per epoch of each, and
the largest difference between the two runs' loss curves.

    python examples/forecast.py --quick [--plot forecast.png] [--device cuda]
"""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

from common import environment_line, parser, print_table, setup, train_twice


def load_co2() -> torch.Tensor:
    try:
        import statsmodels.api as sm
    except ImportError:
        sys.exit("error: this example needs statsmodels (pip install statsmodels): its CO2 data set ships with it")
    series = sm.datasets.co2.load_pandas().data["co2"].interpolate().bfill()
    return torch.tensor(series.to_numpy(), dtype=torch.float32)


def windows(series: torch.Tensor, width: int, scale: float):
    """(inputs relative to each window's last value, next-week change, last value), all scaled."""
    w = series.unfold(0, width, 1)[:-1]  # (n, width)
    last = w[:, -1:]
    return ((w - last) / scale).unsqueeze(-1), (series[width:].unsqueeze(-1) - last) / scale, last


class Forecaster(nn.Module):
    def __init__(self, cell: str, hidden: int, layers: int):
        super().__init__()
        self.rnn = getattr(nn, cell)(1, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def main(argv=None) -> dict:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--window", type=int, default=52)
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--cells", default="RNN,LSTM,GRU")
    p.add_argument("--layers", default="1,2")
    p.add_argument("--plot", default=None, help="PNG with the validation forecasts and the loss curves")
    args = p.parse_args(argv)
    device = setup(args)
    hidden = args.hidden or (32 if args.quick else 64)
    epochs = args.epochs or (4 if args.quick else 30)

    series = load_co2()
    split = int(0.8 * len(series))
    scale = series[:split].diff().std().item()
    x_train, y_train, _ = windows(series[:split], args.window, scale)
    x_val, y_val, last_val = windows(series[split - args.window:], args.window, scale)
    truth = series[split:]
    persistence = (last_val.squeeze(-1) - truth).pow(2).mean().sqrt().item()
    x_train, y_train, x_val, y_val = (t.to(device) for t in (x_train, y_train, x_val, y_val))

    def train(model):
        model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        order = torch.Generator().manual_seed(args.seed)
        losses, times = [], []
        for _ in range(epochs):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            perm = torch.randperm(len(x_train), generator=order).to(device)
            total = 0.0
            for i in range(0, len(perm), 64):
                idx = perm[i:i + 64]
                opt.zero_grad()
                loss = nn.functional.mse_loss(model(x_train[idx]), y_train[idx])
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
            times.append(time.perf_counter() - start)
            losses.append(total / len(perm))
        with torch.no_grad():
            pred = (model(x_val).cpu() * scale + last_val).squeeze(-1)
        rmse = (pred - truth).pow(2).mean().sqrt().item()
        return {"losses": losses, "seconds": sum(times) / len(times), "rmse": rmse, "pred": pred}

    rows = []
    for cell in args.cells.split(","):
        for layers in [int(v) for v in args.layers.split(",")]:
            r = train_twice(lambda: Forecaster(cell, hidden, layers), train, args.seed)
            rows.append({"model": f"{cell} x{layers}", "cell": cell, "layers": layers,
                         "rmse_torch": r["torch.nn"]["rmse"], "rmse_fused": r["fused_rnn"]["rmse"],
                         "s_torch": r["torch.nn"]["seconds"], "s_fused": r["fused_rnn"]["seconds"],
                         "speedup": r["speedup"], "max_loss_diff": r["max_loss_diff"],
                         "losses_torch": r["torch.nn"]["losses"], "losses_fused": r["fused_rnn"]["losses"],
                         "pred": r["fused_rnn"]["pred"]})
    print(f"CO2 forecast, window {args.window} weeks, hidden {hidden}, {epochs} epochs; validation RMSE of the "
          f"persistence forecast {persistence:.3f} ppm | {environment_line(device)}")
    print_table(rows, [("model", "model", "{}"), ("rmse_torch", "val RMSE torch.nn", "{:.3f}"),
                       ("rmse_fused", "val RMSE fused", "{:.3f}"), ("s_torch", "s/epoch torch.nn", "{:.2f}"),
                       ("s_fused", "s/epoch fused", "{:.2f}"), ("speedup", "speedup", "{:.2f}x"),
                       ("max_loss_diff", "max |loss diff|", "{:.1e}")])
    if args.plot:
        plot(args.plot, rows, truth.numpy())
    return {"rows": rows, "persistence_rmse": persistence}


def plot(path, rows, truth):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.5))
    a.plot(truth, color="black", linewidth=2, label="measured")
    for r in rows:
        a.plot(r["pred"].numpy(), linewidth=1, label=r["model"])
        b.plot(r["losses_torch"], label=f"{r['model']} torch.nn")
        b.plot(r["losses_fused"], linestyle="--", label=f"{r['model']} fused")
    a.set_title("validation: next-week CO2 (ppm)")
    a.legend(fontsize=7)
    b.set_yscale("log")
    b.set_title("training loss per epoch (dashed: fused_rnn)")
    b.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
