"""Seeded training recipes of the model zoo.

    python -m neurodeploy.models.train NAME [--out DIR]
    python models/train.py NAME [--out DIR]       (from a source checkout)

NAME is one of ``digits_mlp``, ``digits_conv``, ``temporal_rnn``, ``events_motion``,
``lif_paper`` or ``all``.
Each recipe seeds torch and numpy, uses 2 CPU threads, trains with norse's SuperSpike
surrogate gradient, exports the trained network with ``neurodeploy.export_norse`` to
``DIR/NAME.nir`` (default: the zoo folder beside this file) and prints the float test
accuracy measured by norse itself (:func:`neurodeploy.convert.norse.run_norse`).
``lif_paper`` is not trained: it is the NIR paper's single-LIF graph, built with nir.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: python models/train.py
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    __package__ = "models"  # noqa: A001

from . import ZOO_DIR, decode, get  # noqa: E402
from . import data, definitions  # noqa: E402


@dataclass(frozen=True)
class Recipe:
    seed: int
    epochs: int
    batch: int
    lr: float
    logit_scale: float = 1.0  # multiplies the readout before the cross-entropy (argmax unchanged)
    # keep every membrane within +-v_bound (quadratic penalty beyond it): the float reference
    # must match norse to 1e-5 absolute, and float32 rounding alone grows with |v|
    v_bound: Optional[float] = None
    v_penalty: float = 1e-2


RECIPES: Dict[str, Recipe] = {
    "digits_mlp": Recipe(seed=0, epochs=100, batch=64, lr=3e-3, logit_scale=20.0),
    "digits_conv": Recipe(seed=0, epochs=60, batch=64, lr=3e-3, logit_scale=20.0),
    "temporal_rnn": Recipe(seed=0, epochs=100, batch=128, lr=3e-3, logit_scale=10.0, v_bound=8.0,
                           v_penalty=0.1),
    "events_motion": Recipe(seed=0, epochs=12, batch=32, lr=3e-3, logit_scale=20.0),
}


def _readout_logits(trace: torch.Tensor, rule: str) -> torch.Tensor:
    """Differentiable version of the decision rule, on (batch, T, n) traces."""
    if rule == "v_max":
        return trace.max(dim=1).values
    if rule == "v_sum":
        return trace.mean(dim=1)
    if rule == "v_last":
        return trace[:, -1]
    if rule == "spike_count":
        return trace.sum(dim=1)
    raise ValueError(rule)


def _forward(
    module: torch.nn.Module, x: torch.Tensor, v_bound: Optional[float] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run over time; x is (batch, T, ...).

    Returns the stacked outputs (batch, T, ...) and the mean squared excess of every neuron
    layer's membrane beyond ``v_bound`` (0 when ``v_bound`` is None).
    """
    state = None
    outs = []
    excess = x.new_zeros(())
    for t in range(x.shape[1]):
        out, state = module(x[:, t], state)
        outs.append(out)
        if v_bound is not None:
            for s in state:
                v = getattr(s, "v", None)
                if v is not None:
                    excess = excess + torch.relu(v.abs() - v_bound).pow(2).mean()
    return torch.stack(outs, dim=1), excess / x.shape[1]


def evaluate(name: str, module: torch.nn.Module) -> float:
    """Float test accuracy measured with norse (batched run_norse, the model's readout)."""
    from neurodeploy.convert.norse import run_norse

    info = get(name)
    x, y = data.test_set(name)
    preds = []
    for i in range(0, len(x), 256):
        traces = run_norse(module, x[i: i + 256])
        preds.append(decode(info.rule, traces[info.trace_key]))
    return float(np.mean(np.concatenate(preds) == y))


def train(name: str, out_dir: pathlib.Path, verbose: bool = True) -> Dict[str, object]:
    from neurodeploy.convert.norse import write_norse

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.nir"
    t0 = time.perf_counter()
    if name == "lif_paper":
        import nir

        nir.write(str(path), definitions.lif_paper_graph())
        return {"name": name, "path": str(path), "seconds": time.perf_counter() - t0,
                "accuracy": None, "seed": None}

    recipe = RECIPES[name]
    info = get(name)
    torch.set_num_threads(2)
    torch.manual_seed(recipe.seed)
    np.random.seed(recipe.seed)
    module = definitions.build(name)
    opt = torch.optim.Adam(module.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs)
    gen = torch.Generator().manual_seed(recipe.seed)
    for epoch in range(recipe.epochs):
        x_np, y_np = data.train_set(name, epoch=epoch)
        x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
        perm = torch.randperm(len(x), generator=gen)
        module.train()
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(0, len(x), recipe.batch):
            idx = perm[i: i + recipe.batch]
            out, excess = _forward(module, x[idx], recipe.v_bound)
            logits = recipe.logit_scale * _readout_logits(out, info.rule)
            loss = torch.nn.functional.cross_entropy(logits, y[idx]) + recipe.v_penalty * excess
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            total += len(idx)
        sched.step()
        if verbose:
            print(f"{name} epoch {epoch + 1}/{recipe.epochs} loss {loss_sum / total:.4f} "
                  f"train acc {correct / total:.3f} ({time.perf_counter() - t0:.0f}s)", flush=True)
    module.eval()
    train_seconds = time.perf_counter() - t0
    write_norse(module, definitions.sample(name), path, dt=definitions.DT)
    # measure on the module rebuilt from the written file: what ships is what is measured
    acc = evaluate(name, definitions.load(name, path))
    return {"name": name, "path": str(path), "seconds": train_seconds, "accuracy": acc,
            "seed": recipe.seed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=[*RECIPES, "lif_paper", "all"])
    parser.add_argument("--out", type=pathlib.Path, default=ZOO_DIR,
                        help="output folder (default: the zoo folder)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    names = [*RECIPES, "lif_paper"] if args.name == "all" else [args.name]
    for name in names:
        res = train(name, args.out, verbose=not args.quiet)
        acc = "-" if res["accuracy"] is None else f"{100 * res['accuracy']:.2f}%"
        print(f"{name}: wrote {res['path']}  seed={res['seed']}  "
              f"time={res['seconds']:.1f}s  float test accuracy (norse)={acc}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
