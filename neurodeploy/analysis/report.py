"""One self-contained HTML report of a deployment: ``write_report(compiled_or_artifact, inputs, path)``.

Sections: model summary, health warnings, quantization error per layer (the artifact's health
metrics), core/chip utilisation heat map, spike rasters float reference vs deployed with the
first divergence marked (``neurodeploy.analysis.verify``), and the profile tables
(:mod:`neurodeploy.analysis.profile`, with measured values when :mod:`neurodeploy.analysis.profile_ingest` added
them). Figures are matplotlib PNGs embedded as base64; the file needs nothing else.

The float model comes from a compiled model itself, else from ``source`` or the artifact's
provenance (a file of that name next to the artifact, in the working folder or in the model
zoo, whose SHA-256 matches the provenance); without it the rasters show the deployed spikes only.
"""
from __future__ import annotations

import base64
import html
import io
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from neurodeploy.format import atomic, core_slices
from neurodeploy.analysis.gate import float_net, provenance_path
from neurodeploy.format.paths import relative, sha256
from neurodeploy.errors import NeurodeployError


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v == 0:
            return "0"
        if abs(v) >= 1e5 or abs(v) < 1e-3:
            return f"{v:.{digits}g}"
        return f"{v:,.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}g}"
    if isinstance(value, (list, tuple)):
        return _esc(", ".join(str(v) for v in value))
    return _esc(value)


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]], cls: str = "") -> str:
    headers = list(headers)
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}">{thead}<tbody>{body}</tbody></table>'


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{_esc(fig.get_label() or "figure")}" src="data:image/png;base64,{data}">'


def _figure(width: float, height: float, label: str):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), label=label)


# ------------------------------------------------------------------ the float model

def _shown(path: Path, report_dir: str | Path | None) -> str:
    """A file as the report names it: its path relative to the report and its SHA-256 (16 digits)."""
    return f"{relative(path, report_dir or Path.cwd())} (SHA-256 {sha256(path)[:16]})"


def find_source(manifest: dict, source: str | Path | None = None, artifact_path: str | Path | None = None,
                report_dir: str | Path | None = None) -> tuple[Path | None, str]:
    """The NIR file an artifact was compiled from, and a note on how it was found (or why not).

    The note names the file relative to ``report_dir`` (default: the working folder), never absolutely.
    """
    prov = manifest.get("provenance", {})
    expected = prov.get("source_sha256")
    if source is not None:
        path = Path(source)
        if not path.is_file():
            raise NeurodeployError(f"{path}: no such source model (--source)")
        note = f"float model from {_shown(path, report_dir)}"
        if expected and sha256(path) != expected:
            note += " (WARNING: its SHA-256 differs from the artifact's provenance; the comparison may be meaningless)"
        return path, note
    name = prov.get("source")
    if not name or name == "<graph>":
        return None, "the artifact was compiled from an in-memory graph: pass --source MODEL.nir for float rasters"
    candidates = [Path(name)]
    if artifact_path is not None:
        candidates.append(provenance_path(Path(artifact_path).resolve(), prov))  # source_relpath, as verify reads it
        candidates.append(Path(artifact_path).resolve().parent / name)
    candidates.append(Path.cwd() / name)
    try:
        from neurodeploy.models import ZOO_DIR

        candidates.append(ZOO_DIR / name)
    except ImportError:  # pragma: no cover
        pass
    for path in candidates:
        if path is not None and path.is_file() and (not expected or sha256(path) == expected):
            return path, f"float model {_shown(path, report_dir)}, matching the artifact's provenance"
    return None, f"source '{name}' with the artifact's SHA-256 not found: pass --source MODEL.nir for float rasters"


# ------------------------------------------------------------------ figures

def _quantization_figure(metrics: dict) -> str | None:
    layers, values = [], []
    for layer, m in metrics.items():
        if "weight_error" in m:
            layers.append(layer)
            values.append(float(m["weight_error"]))
    if not layers:
        return None
    fig = _figure(7, 0.5 + 0.45 * len(layers), "quantization error per layer")
    ax = fig.add_subplot(111)
    y = np.arange(len(layers))
    ax.barh(y, values, color="#4c72b0")
    zeroed = [float(metrics[layer].get("weights_zeroed", 0.0)) for layer in layers]
    ax.barh(y + 0.3, zeroed, height=0.25, color="#dd8452", label="fraction of weights zeroed")
    ax.set_yticks(y, layers)
    ax.invert_yaxis()
    ax.set_xlabel("weight error (relative, from the health report)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), fontsize=8)
    ax.set_title("float vs integer weights")
    return _png(fig)


def _utilisation_figure(profile: dict) -> str | None:
    cores = profile["cores"]
    if not cores:
        return None
    keys: list[str] = []
    for c in cores:
        for k in c["utilisation"]:
            if k not in keys:
                keys.append(k)
    grid = np.full((len(cores), len(keys)), np.nan)
    for i, c in enumerate(cores):
        for j, k in enumerate(keys):
            if k in c["utilisation"]:
                grid[i, j] = c["utilisation"][k]
    fig = _figure(1.8 + 1.6 * len(keys), 1.0 + 0.35 * len(cores), "core utilisation heat map")
    ax = fig.add_subplot(111)
    im = ax.imshow(grid, cmap="YlOrRd", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(keys)), keys, rotation=20, ha="right")
    ax.set_yticks(range(len(cores)), [f"chip {c['chip']} core {c['core']}: {core_slices.slice_label(c)}"
                                      for c in cores])
    if len(cores) <= 40:
        for i in range(len(cores)):
            for j in range(len(keys)):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{100 * grid[i, j]:.1f}%", ha="center", va="center", fontsize=8,
                            color="black" if grid[i, j] < 0.6 else "white")
    fig.colorbar(im, ax=ax, label="use / limit")
    ax.set_title("utilisation of each core against its limits")
    return _png(fig)


def _raster_figure(name: str, ref: np.ndarray | None, emu: np.ndarray, first: int | None, sample: int) -> str:
    """ref, emu: (steps, neurons) 0/1 of one sample (ref None when no float model)."""
    steps, n = emu.shape
    fig = _figure(9, 1.6 + min(n, 256) * 0.012, f"raster {name}")
    ax = fig.add_subplot(111)
    et, ei = np.nonzero(emu)
    if ref is not None:
        rt, ri = np.nonzero(ref)
        ax.scatter(rt, ri, marker="|", s=30, color="black", label="float reference", linewidths=1)
        mism = np.nonzero(ref.astype(bool) != emu.astype(bool))
        if mism[0].size:
            ax.scatter(mism[0], mism[1], marker="x", s=22, color="red", label="mismatch", linewidths=1)
    ax.scatter(et, ei, marker=".", s=10, color="#ff8c00", label="deployed (emulated)")
    if first is not None:
        ax.axvline(first - 0.5, color="red", linestyle="--", linewidth=1.2)
        ax.text(first, n * 0.98, f" first divergence: step {first}", color="red", va="top", fontsize=8)
    ax.set_xlim(-0.5, steps - 0.5)
    ax.set_ylim(-0.5, n - 0.5)
    ax.set_xlabel("step (float reference's time)")
    ax.set_ylabel("neuron")
    ax.set_title(f"{name}: spikes of sample {sample}" + (" (no float model)" if ref is None else ""))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, framealpha=0.8)
    return _png(fig)


def _activity_figure(profile: dict) -> str | None:
    cores = [c for c in profile["cores"] if not c["input"]]
    if not cores:
        return None
    fig = _figure(9, 2.8, "activity per core")
    ax = fig.add_subplot(121)
    labels = [f"{c['core']}" for c in cores]
    syn = [c["effective_acs"]["mean_per_sample"] + c["effective_macs"]["mean_per_sample"] for c in cores]
    ax.bar(labels, syn, color="#4c72b0")
    ax.set_xlabel("core")
    ax.set_ylabel("synaptic ops per sample")
    ax.set_title("synaptic operations per core")
    ax2 = fig.add_subplot(122)
    ax2.bar(labels, [c["spikes"]["mean_per_sample"] for c in cores], color="#dd8452")
    ax2.set_xlabel("core")
    ax2.set_ylabel("spikes per sample")
    ax2.set_title("spikes per core")
    fig.tight_layout()
    return _png(fig)


# ------------------------------------------------------------------ sections

def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{_esc(title)}</h2>{body}</section>'


def _summary_section(manifest: dict, profile: dict, source_note: str) -> str:
    prov = manifest.get("provenance", {})
    m = manifest["mapping"]
    rows = [("target", profile["description"]), ("source", prov.get("source")),
            ("source SHA-256", str(prov.get("source_sha256", ""))[:16]),
            ("artifact content hash", str(manifest.get("content_hash", ""))[:16]),
            ("neurodeploy", prov.get("versions", {}).get("neurodeploy")),
            ("semantics", ", ".join(f"{k}={v}" for k, v in manifest["semantics"].items())),
            ("mapping", f"{m['cores_used']} core(s) on {m['chips_used']} of {m['chips_available']} chip(s); "
                        f"fits: {'yes' if m['fits'] else 'NO'}"),
            ("inputs profiled", f"{profile['samples']} sample(s) x {profile['steps']} steps "
                                f"({profile['input_steps']} input + {profile['steps'] - profile['input_steps']} latency padding)"),
            ("float model", source_note)]
    body = _table(("", ""), rows, "kv")
    pops = [(p["name"], p["model"], p["kind"], "x".join(map(str, p["shape"])), p["spiking"], p["latency"],
             ", ".join(str(c) for c in profile["populations"][p["name"]]["cores"]))
            for p in manifest["program"]["populations"]]
    body += "<h3>Populations</h3>" + _table(("population", "model", "kind", "shape", "spiking", "latency (steps)", "cores"), pops)
    conns = []
    for c in manifest["program"]["connections"]:
        a = c["attrs"]
        extra = ", ".join(f"{k}={a[k]}" for k in ("weight_exp", "sign_mode", "delay", "source_kind") if k in a)
        conns.append((c["name"], c["source"], c["target"], c["kind"], f"{c['n_in']} -> {c['n_out']}",
                      c["recurrent"], extra))
    body += "<h3>Connections</h3>" + _table(("connection", "source", "target", "kind", "size", "recurrent", "attributes"), conns)
    return _section("Model summary", body, "summary")


def _health_section(manifest: dict) -> str:
    findings = manifest.get("health", {}).get("findings", [])
    shown = [f for f in findings if f["severity"] != "info"]
    info = len(findings) - len(shown)
    if shown:
        body = _table(("severity", "layer", "check", "value", "message"),
                      [(f["severity"], f["layer"], f["check"], f["value"], f["message"]) for f in shown], "health")
    else:
        body = '<p class="ok">No warnings or severe findings.</p>'
    if info:
        body += f"<p>{info} informational finding(s) not shown.</p>"
    return _section("Health warnings", body, "health")


def _quantization_section(manifest: dict) -> str:
    metrics = manifest.get("health", {}).get("metrics", {})
    if not metrics:
        return _section("Quantization error per layer", "<p>No metrics in the artifact.</p>", "quantization")
    keys: list[str] = []
    for m in metrics.values():
        for k in m:
            if k not in keys:
                keys.append(k)
    rows = [[layer] + [m.get(k) for k in keys] for layer, m in metrics.items()]
    body = _quantization_figure(metrics) or ""
    body += _table(["layer"] + keys, rows, "metrics")
    return _section("Quantization error per layer", body, "quantization")


def _utilisation_section(profile: dict, manifest: dict) -> str:
    body = _utilisation_figure(profile) or ""
    chips = [(c["chip"], c["cores"], c["core_utilisation"], c["neurons"], c["spikes"], c["synaptic_operations"],
              sum(c["footprint_bits"].values()) / 8 / 1024) for c in profile["chips"]]
    body += "<h3>Chips</h3>" + _table(("chip", "cores", "cores used / per chip", "neurons", "spikes (all samples)",
                                       "synaptic ops (all samples)", "footprint (KiB)"), chips)
    limits = [(l["limit"], l["value"], l["size"], l["margin"], l["unit"], l["source"]) for l in manifest["mapping"]["limits"]]
    body += "<h3>Limits checked by the mapper</h3>" + _table(("limit", "worst value", "size", "margin", "unit", "source"), limits)
    return _section("Core and chip utilisation", body, "utilisation")


def _raster_section(program, net, inputs, verify_report: dict | None, max_neurons: int = 256) -> str:
    from neurodeploy.analysis.verify import emulate_like_reference

    first_input = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
    one = {k: np.asarray(v)[:1] for k, v in inputs.items()} if isinstance(inputs, dict) else np.asarray(first_input)[:1]
    steps = int(np.asarray(first_input).shape[1])
    emu = emulate_like_reference(program, one, steps)
    ref = None
    if net is not None:
        from neurodeploy.emulator.reference import simulate

        ref = simulate(net, one, record=(), dtype="float64")
    parts = []
    rows = []
    for pop in program.populations:
        key = f"spikes.{pop.name}"
        if key not in emu:
            continue
        e = emu[key][0].reshape(emu[key].shape[1], -1)[:, :max_neurons]
        r = None
        first = None
        if ref is not None and key in ref:
            r = ref[key][0].reshape(ref[key].shape[1], -1)[:steps, :max_neurons]  # emu is aligned and padded
            diff = np.any(r.astype(bool) != e.astype(bool), axis=1)
            first = int(np.argmax(diff)) if diff.any() else None
        if r is None:
            caption = f"{pop.name}: deployed spikes only (no float model)"
        elif first is None:
            caption = f"{pop.name}: sample 0 identical to the float reference"
        else:
            caption = f"{pop.name}: sample 0 first divergence at step {first} (dashed red line)"
        parts.append(_raster_figure(pop.name, r, e, first, 0) + f'<p class="caption">{_esc(caption)}</p>')
        if verify_report is not None:
            v = verify_report["populations"].get(pop.name, {})
            rows.append((pop.name, v.get("spikes_reference"), v.get("spikes_emulated"), v.get("spike_agreement"),
                         "identical" if v.get("first_divergent_step") is None else v.get("first_divergent_step"),
                         v.get("v_max_error"), v.get("v_rms_error")))
    body = ""
    if rows:
        body += ("<p>All samples (<code>neurodeploy.analysis.verify.compare</code>; emulated spikes shifted back by each "
                 "population's latency):</p>")
        body += _table(("population", "spikes float", "spikes deployed", "spike agreement", "first divergent step",
                        "v max error", "v rms error"), rows)
        outs = [(o, e.get("rule"), e.get("class_agreement")) for o, e in verify_report["outputs"].items()]
        if outs:
            body += _table(("output", "rule", "class agreement"), outs)
    if not parts:
        body += "<p>No spiking population.</p>"
    body += "".join(f'<div class="figure">{p}</div>' for p in parts)
    if any(p.size > max_neurons for p in program.populations if p.spiking):
        body += f"<p>Rasters show at most the first {max_neurons} neurons of a population.</p>"
    return _section("Spike rasters: float reference vs deployed", body, "rasters")


def _profile_section(profile: dict) -> str:
    t = profile["total"]
    total_rows = [
        ("spikes per sample", t["spikes"]["mean_per_sample"], t["spikes"]["total"]),
        ("Effective_ACs per sample", t["effective_acs"]["mean_per_sample"], t["effective_acs"]["total"]),
        ("Effective_MACs per sample", t["effective_macs"]["mean_per_sample"], t["effective_macs"]["total"]),
        ("Dense synaptic ops per sample", t["dense_synops"]["mean_per_sample"], t["dense_synops"]["total"]),
        ("neuron updates per sample", t["neuron_updates"]["mean_per_sample"], t["neuron_updates"]["total"]),
        ("spike rate per neuron per step", t["rate_per_neuron_step"], None),
        ("spike rate (Hz)", t["rate_hz"], None),
        ("activation sparsity", t["activation_sparsity"], None),
        ("connection sparsity", t["connection_sparsity"], None),
        ("synapses (non-zero weights)", t["synapses"], None),
        ("footprint (KiB)", sum(t["footprint_bits"].values()) / 8 / 1024, None),
    ]
    body = "<h3>Totals (NeuroBench metrics)</h3>" + _table(("metric", "per sample / value", "all samples"), total_rows, "totals")
    body += _activity_figure(profile) or ""
    pops = [(n, e["neurons"], e["spikes"]["mean_per_sample"], e["rate_per_neuron_step"], e["rate_hz"],
             e["activation_sparsity"], e["effective_acs"]["mean_per_sample"], e["effective_macs"]["mean_per_sample"],
             e["neuron_updates"]["mean_per_sample"]) for n, e in profile["populations"].items()]
    body += "<h3>Per population (per sample)</h3>" + _table(
        ("population", "neurons", "spikes", "rate / neuron / step", "rate (Hz)", "activation sparsity",
         "Effective_ACs in", "Effective_MACs in", "neuron updates"), pops)
    inputs = [(n, e["neurons"], e["events"]["mean_per_sample"], e["value_sum"]["mean_per_sample"], e["graded"])
              for n, e in profile["inputs"].items()]
    body += "<h3>Inputs (per sample)</h3>" + _table(("input", "size", "non-zero values", "sum of values", "graded"), inputs)
    conns = [(n, f"{c['source']} -> {c['target']}", c["kind"], c["synapses"], c["stored_synapses"], c["dense_size"],
              c["connection_sparsity"], f"{c['fan_out']['min']}-{c['fan_out']['max']} (mean {c['fan_out']['mean']:.1f})",
              c["effective_acs"]["mean_per_sample"], c["effective_macs"]["mean_per_sample"])
             for n, c in profile["connections"].items()]
    body += "<h3>Per connection (per sample)</h3>" + _table(
        ("connection", "edge", "kind", "synapses", "stored", "dense size", "connection sparsity", "fan-out",
         "Effective_ACs", "Effective_MACs"), conns)
    cores = []
    for r in profile["cores"]:
        syn = None if r["input"] else r["effective_acs"]["mean_per_sample"] + r["effective_macs"]["mean_per_sample"]
        cores.append((r["core"], r["chip"], core_slices.slice_label(r), r["neurons"],
                      r["spikes"]["mean_per_sample"], syn,
                      None if r["input"] else r["synaptic_events"]["mean_per_sample"],
                      None if r["input"] else r["neuron_updates"]["mean_per_sample"],
                      sum(r["footprint_bits"].values()) / 8 / 1024,
                      max(r["utilisation"].values()) if r["utilisation"] else None))
    body += "<h3>Per core (per sample)</h3>" + _table(
        ("core", "chip", "slice", "neurons", "spikes", "synaptic ops in", "synaptic events (target)", "neuron updates",
         "footprint (KiB)", "peak utilisation"), cores)
    fb = [(r["core"],) + tuple(r["footprint_bits"].get(k, 0) for k in ("weights", "synapse_metadata", "state", "routing"))
          for r in profile["cores"]]
    body += "<h3>Deployed footprint per core (bits)</h3>" + _table(
        ("core", "weights", "synapse metadata", "state", "routing"), fb)
    body += _cost_html(profile)
    rt = profile.get("realtime")
    if rt:
        body += (f"<h3>SpiNNaker real-time budget</h3><p>Budget {rt['budget_events_per_ms'][0]:,}-"
                 f"{rt['budget_events_per_ms'][1]:,} synaptic events per ms per core ({_esc(rt['source'])}); "
                 f"dt = {rt['dt_ms']:g} ms. Smallest time_scale_factor: {rt['min_time_scale_factor']['conservative']} "
                 f"(conservative) / {rt['min_time_scale_factor']['optimistic']} (optimistic). Largest neurons per core in "
                 f"real time: {_fmt(rt['max_neurons_per_core_real_time']['conservative'])} / "
                 f"{_fmt(rt['max_neurons_per_core_real_time']['optimistic'])}. {_esc(rt['note'])}.</p>")
        body += _table(("core", "population", "neurons", "peak events / step", "peak events / ms", "mean events / ms",
                        "fits (5,000)", "fits (10,000)"),
                       [(c["core"], c["population"], c["neurons"], c["peak_events_per_step"], c["peak_events_per_ms"],
                         c["mean_events_per_ms"], c["fits_conservative"], c["fits_optimistic"]) for c in rt["cores"]])
    if profile.get("comparison"):
        body += "<h3>Measured on hardware vs predicted</h3>" + _table(
            ("quantity", "scope", "predicted", "measured", "ratio (measured / predicted)", "unit", "source"),
            [(r["quantity"], r["scope"], r["predicted"], r["measured"], r["ratio"], r["unit"], r["source"])
             for r in profile["comparison"]], "comparison")
    return _section("Profile", body, "profile")


def _cost_html(profile: dict) -> str:
    c = profile["cost"]
    if not c.get("model"):
        return f"<h3>Energy and latency</h3><p>{_esc(c['label'])}.</p>"
    badge = "calibrated" if c.get("calibrated") else "UNCALIBRATED"
    out = (f'<h3>Energy and latency per inference <span class="badge {badge.lower()}">{badge}</span></h3>'
           f"<p>{_esc(c['model'])}: {_esc(c['label'])}.</p>")
    rows = [("energy per inference (J)", c["energy_j"]["per_inference"], c["energy_j"]["total"])]
    for k, v in c["components_j"].items():
        rows.append((f"&nbsp;&nbsp;{k} (J)", v["per_inference"], v["total"]))
    if "energy_whole_board_j" in c:
        rows.append(("whole SpiNN-5 board (J)", c["energy_whole_board_j"]["per_inference"], c["energy_whole_board_j"]["total"]))
        rows.append(("boxed SpiNN-5 board (J)", c["energy_boxed_board_j"]["per_inference"], c["energy_boxed_board_j"]["total"]))
    rows.append((f"latency per inference (s): {c['latency_kind']}", c["latency_s"]["per_inference"], c["latency_s"]["total"]))
    head = "".join(f"<th>{h}</th>" for h in ("quantity", "per inference", "all samples"))
    body = "".join(f"<tr><td>{r[0]}</td><td>{_fmt(r[1])}</td><td>{_fmt(r[2])}</td></tr>" for r in rows)
    out += f'<table class="cost"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    out += "<p><b>Assumptions</b></p><ul>" + "".join(f"<li>{_esc(a)}</li>" for a in c["assumptions"]) + "</ul>"
    sources = c.get("sources", {})
    out += "<p><b>Constants</b></p>" + _table(("constant", "value", "source"),
                                            [(k, v, sources.get(k, "")) for k, v in c["constants"].items()])
    return out


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1150px}
h1{font-size:1.5em}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:0.85em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f2}tbody tr:nth-child(even){background:#fafafa}
img{max-width:100%;display:block;margin:8px 0}.badge{font-size:0.7em;padding:2px 6px;border-radius:4px}
.badge.uncalibrated{background:#c0392b;color:#fff}.badge.calibrated{background:#27ae60;color:#fff}
.ok{color:#27ae60}nav a{margin-right:12px}code{background:#f4f4f4;padding:1px 3px}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) { if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; } }
  document.body.setAttribute('data-images-decoded', ok + '/' + imgs.length);
  console.log('neurodeploy-report: images decoded ' + ok + '/' + imgs.length);
});
"""


def build_report(compiled_or_artifact: Any, inputs: Any, source: str | Path | None = None, *,
                 artifact_path: str | Path | None = None, profile_data: dict | None = None,
                 report_path: str | Path | None = None) -> str:
    """The report as an HTML string (see :func:`write_report`); files it names are shown relative
    to ``report_path``'s folder (default: the working folder)."""
    from neurodeploy.analysis.profile import load, profile as run_profile
    from neurodeploy.analysis.verify import compare

    net = getattr(compiled_or_artifact, "net", None)
    if isinstance(compiled_or_artifact, (str, Path)):
        artifact_path = artifact_path or compiled_or_artifact
    art, program = load(compiled_or_artifact)
    manifest = art.manifest
    source_note = "float model from the compiled model"
    if net is None or source is not None:
        report_dir = Path(report_path).absolute().parent if report_path is not None else None
        path, source_note = find_source(manifest, source, artifact_path, report_dir)
        net = float_net(path, manifest["semantics"]) if path is not None else None
    p = profile_data if profile_data is not None else run_profile(art, inputs)
    verify_report = None
    if net is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            verify_report = compare(net, program, inputs)
    sections = [
        _summary_section(manifest, p, source_note),
        _health_section(manifest),
        _quantization_section(manifest),
        _utilisation_section(p, manifest),
        _raster_section(program, net, inputs, verify_report),
        _profile_section(p),
    ]
    title = f"neurodeploy report: {manifest.get('provenance', {}).get('source', 'model')} on {program.target}"
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("summary", "Summary"), ("health", "Health"), ("quantization", "Quantization"), ("utilisation", "Utilisation"),
        ("rasters", "Rasters"), ("profile", "Profile")))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{_esc(title)}</h1><nav>{nav}</nav>{''.join(sections)}"
            f"<script>{_SCRIPT}</script></body></html>\n")


def write_report(compiled_or_artifact: Any, inputs: Any, path: str | Path, source: str | Path | None = None, *,
                 artifact_path: str | Path | None = None, profile_data: dict | None = None) -> Path:
    """Write the self-contained HTML report of a compiled model, an Artifact or an .ndp path.

    ``inputs``: (batch, steps, *input_shape) array or {input: array}; ``source``: the NIR file
    for the float rasters when the artifact's provenance does not lead to it; ``profile_data``:
    a profile (possibly with measurements ingested) to show instead of profiling again.
    """
    text = build_report(compiled_or_artifact, inputs, source, artifact_path=artifact_path, profile_data=profile_data,
                        report_path=path)
    return atomic.write_text(path, text)
