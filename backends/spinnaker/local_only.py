"""Reading back what sPyNNaker 7.4.1 loads for local-only conv projections (runner side).

A ``ConvolutionConnector`` has no synaptic matrix to decode: each receiving core gets the kernel
in its local-only region, written by ``LocalOnlyConvolution.write_parameters`` from
``ConvolutionConnector.get_encoded_kernel_weights`` (int16 words: ``round(w * weight_scale)``)
and ``get_local_only_data`` (kernel shape, padding, receptor per sign, delay). :class:`Probe`
records both, per connector and core, while sPyNNaker generates the data (a virtual board does
that on the host). :func:`readback` expands the recorded words into synapses exactly as
``local_only_conv_impl.c`` applies them for stride 1 (a spike at pre (row, col) reaches post
(row + pad - i, col + pad - j) with ``weights[(kh-1-i) * kw + (kw-1-j)]``; zero words are
skipped; positive words go to the positive receptor, negative ones, negated, to the other),
so the runner compares them with the artifact's synapses like FromList rows. Pool + dense:
the probe also records ``PoolDenseConnector.get_local_only_data`` per (projection, post slice),
and :func:`expand_pool_dense` applies its int16 weights in 7.4.1's host layout (pooled x, pooled
y, post).
"""
from __future__ import annotations

from typing import Any

import numpy as np


class Probe:
    """Records every kernel and connector struct sPyNNaker encodes, until :meth:`remove`."""

    def __init__(self):
        from spynnaker.pyNN.models.neural_projections.connectors.convolution_connector import ConvolutionConnector

        self.cls = ConvolutionConnector
        self.original_weights = ConvolutionConnector.get_encoded_kernel_weights
        self.original_data = ConvolutionConnector.get_local_only_data
        self.weights: dict[int, list[np.ndarray]] = {}
        self.data: dict[int, list[dict]] = {}
        probe = self

        def weights(self_, app_edge, weight_scales):
            out = probe.original_weights(self_, app_edge, weight_scales)
            probe.weights.setdefault(id(self_), []).append(np.array(out, dtype=np.int64))
            return out

        def data(self_, app_edge, local_delay, delay_stage, weight_index):
            out = probe.original_data(self_, app_edge, local_delay, delay_stage, weight_index)
            shorts = np.asarray(out[:5], dtype=np.uint32).view(np.uint16).astype(np.int64)
            probe.data.setdefault(id(self_), []).append({
                "kernel": (int(shorts[0]), int(shorts[1])), "padding": (int(shorts[2]), int(shorts[3])),
                "receptors": (int(shorts[4]), int(shorts[5])), "delay_stage": int(shorts[6]),
                "local_delay": int(shorts[7]), "slots": int(app_edge.post_vertex.splitter.max_support_delay())})
            return out

        ConvolutionConnector.get_encoded_kernel_weights = weights
        ConvolutionConnector.get_local_only_data = data
        self._pool_dense()

    def _pool_dense(self) -> None:
        """Record what ``PoolDenseConnector.get_local_only_data`` writes for each (connector, core)."""
        from spynnaker.pyNN.models.neural_projections.connectors.pool_dense_connector import PoolDenseConnector

        self.pool_cls, self.pool_original = PoolDenseConnector, PoolDenseConnector.get_local_only_data
        self.pool: dict[int, list[dict]] = {}
        probe = self

        def data(self_, app_edge, local_delay, delay_stage, post_vertex_slice, weight_scales):
            out = probe.pool_original(self_, app_edge, local_delay, delay_stage, post_vertex_slice, weight_scales)
            shorts = np.asarray(out[:3], dtype=np.uint32).view(np.int16).astype(np.int64)
            n_dims, n_weights = int(shorts[0]), int(shorts[1])
            probe.pool.setdefault(id(self_), []).append({
                "n_dims": n_dims, "receptors": (int(shorts[2]), int(shorts[3])), "delay_stage": int(shorts[4]),
                "local_delay": int(shorts[5]), "slots": int(app_edge.post_vertex.splitter.max_support_delay()),
                "stride_div": [int(v) for v in np.asarray(out[3:3 + n_dims], dtype=np.uint32)],
                "pre_shape": tuple(int(v) for v in app_edge.pre_vertex.atoms_shape),
                "post_lo": int(post_vertex_slice.lo_atom), "post_n": int(post_vertex_slice.n_atoms),
                "weights": np.asarray(out[3 + n_dims:], dtype=np.uint32).view(np.int16)[:n_weights].astype(np.int64)})
            return out

        PoolDenseConnector.get_local_only_data = data

    def remove(self) -> None:
        self.cls.get_encoded_kernel_weights = self.original_weights
        self.cls.get_local_only_data = self.original_data
        self.pool_cls.get_local_only_data = self.pool_original


def expand(words: np.ndarray, kernel: tuple[int, int], padding: tuple[int, int], in_grid: tuple[int, int],
           out_grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pre, post, signed word) of one connector as the core applies it (stride 1, no pooling).

    ``kernel``, ``padding``: (height, width) as the connector struct holds them; grids (H, W);
    indices in raster order (row * W + col) of the pre and post populations.
    """
    kh, kw = kernel
    flat = np.asarray(words, dtype=np.int64).reshape(-1)
    (h_in, w_in), (h_out, w_out) = in_grid, out_grid
    rows, cols = np.divmod(np.arange(h_in * w_in), w_in)
    pre, post, word = [], [], []
    for i in range(kh):
        for j in range(kw):
            w = int(flat[(kh - 1 - i) * kw + (kw - 1 - j)])
            if w == 0:
                continue
            r, c = rows + padding[0] - i, cols + padding[1] - j
            ok = (r >= 0) & (r < h_out) & (c >= 0) & (c < w_out)
            pre.append(np.flatnonzero(ok))
            post.append(r[ok] * w_out + c[ok])
            word.append(np.full(int(ok.sum()), w, dtype=np.int64))
    if not pre:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pre), np.concatenate(post), np.concatenate(word)


def _delay_steps(info: dict) -> int:
    """The delay the core applies: ``local_delay`` is ``steps % slots`` (0 means a whole ring)."""
    local, slots, stage = info["local_delay"], info["slots"], info["delay_stage"]
    if stage:
        return (stage + 1) * slots + local
    return local if local else slots


def _artifact_synapses(conn, plan) -> dict[str, list[np.ndarray]]:
    """The artifact's non-zero synapses of a conv connection per receptor tag, population-wide."""
    from neurodeploy.format import convolution

    arrays = convolution.sparse_arrays(conn.arrays, conn.attrs)
    post = np.repeat(np.arange(conn.n_out, dtype=np.int64), np.diff(arrays["indptr"]))
    pre = np.asarray(arrays["indices"], dtype=np.int64)
    word = np.asarray(arrays["weight"], dtype=np.int64)
    types = np.asarray(arrays["synapse_type"], dtype=np.int64)
    delay = int(conn.attrs["delay"])
    out = {}
    for kind, tag in ((0, "exc"), (1, "inh")):
        sel = (types == kind) & (word != 0)  # the core skips zero words: they add nothing
        out[tag] = [pre[sel], post[sel], word[sel], np.full(int(sel.sum()), delay, dtype=np.int64)]
    return out


def by_connection(items: list) -> dict[str, list]:
    """Planned local-only projections (convs or pool + dense) grouped by artifact connection, in order."""
    groups: dict[str, list] = {}
    for item in items:
        groups.setdefault(item.connection, []).append(item)
    return groups


def readback(built, plan, program, probe: Probe) -> dict[str, dict[str, Any]]:
    """Per ``<conn>:exc|inh`` of every local-only conv: what sPyNNaker loaded (``have``, expanded
    by :func:`expand`) and the artifact's synapses (``want``), both (pre, post, word, delay)."""
    out: dict[str, dict[str, Any]] = {}
    for name, convs in by_connection(plan.convs).items():
        have = {"exc": [], "inh": []}
        problems: list[str] = []
        for cv in convs:
            connector = built.projections[cv.label]._synapse_information.connector
            words, data = probe.weights.get(id(connector), []), probe.data.get(id(connector), [])
            if not words or not data:
                problems.append(f"{cv.label}: sPyNNaker encoded no kernel")
                continue
            if any(not np.array_equal(w, words[0]) for w in words) or any(d != data[0] for d in data):
                problems.append(f"{cv.label}: the cores of the target got different kernels")
            if not np.array_equal(words[0].reshape(cv.words.shape), cv.words):
                problems.append(f"{cv.label}: encoded kernel differs from the planned rotated words")
            info = data[0]
            pre, post, word = expand(words[0], info["kernel"], info["padding"], cv.in_grid, cv.out_grid)
            pre = pre + cv.in_channel * cv.in_grid[0] * cv.in_grid[1]
            post = post + cv.out_channel * cv.out_grid[0] * cv.out_grid[1]
            _by_receptor(have, info, pre, post, word)
        want = _artifact_synapses(program_connection(program, name), plan)
        out.update(_compared(name, have, want, problems, {"projections": len(convs)}))
    return out


def expand_pool_dense(weights: np.ndarray, pool: int, grid: tuple[int, int], post_lo: int,
                      post_n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pre, post, signed word) of one PoolDense core: ``weights`` in 7.4.1's layout (pooled x,
    pooled y, post of the core's slice); a spike from pre (row, col) adds the words of pooled cell
    (col // pool, row // pool) to every post; zero words are skipped. Pre in raster order (row * W + col)."""
    h, w = grid
    table = np.asarray(weights, dtype=np.int64).reshape(w // pool, h // pool, post_n)
    rows, cols = np.divmod(np.arange(h * w), w)
    per_pre = table[cols // pool, rows // pool]  # (n_pre, post_n)
    pre, post = np.nonzero(per_pre)
    return pre.astype(np.int64), post.astype(np.int64) + post_lo, per_pre[pre, post]


def _pool_dense_have(pds: list, built, probe: Probe, problems: list[str]) -> dict[str, list]:
    """What sPyNNaker encoded for one connection's PoolDense projections, per receptor tag."""
    from spynnaker.pyNN.models.common.local_only_2d_common import get_div_const

    have: dict[str, list] = {"exc": [], "inh": []}
    for pd in pds:
        records = probe.pool.get(id(built.projections[pd.label]._synapse_information.connector), [])
        if not records:
            problems.append(f"{pd.label}: sPyNNaker encoded no weights")
        for info in records:
            if info["pre_shape"] != (pd.grid[1], pd.grid[0]) or info["stride_div"] != [get_div_const(pd.pool)] * 2:
                problems.append(f"{pd.label}: encoded source shape {info['pre_shape']} or stride differs from the plan")
                continue
            lo, n = info["post_lo"], info["post_n"]
            if not np.array_equal(info["weights"].reshape(pd.words.shape[:2] + (n,)), pd.words[:, :, lo:lo + n]):
                problems.append(f"{pd.label}: encoded weights of posts {lo}..{lo + n - 1} differ from the planned words")
            pre, post, word = expand_pool_dense(info["weights"], pd.pool, pd.grid, lo, n)
            pre = pre + pd.channel * pd.grid[0] * pd.grid[1]
            _by_receptor(have, info, pre, post, word)
    return have


def _by_receptor(have: dict[str, list], info: dict[str, Any], pre: np.ndarray, post: np.ndarray,
                 word: np.ndarray) -> None:
    """Add read-back synapses to ``have`` per receptor tag: positive words on the positive
    receptor, negative on the negative one (as magnitudes), with the projection's delay."""
    steps = np.full(pre.size, _delay_steps(info), dtype=np.int64)
    pos, neg = info["receptors"]
    for receptor, sel in ((pos, word > 0), (neg, word < 0)):
        tag = "exc" if receptor == 0 else "inh" if receptor == 1 else f"receptor{receptor}"
        have.setdefault(tag, []).append([pre[sel], post[sel], np.abs(word[sel]), steps[sel]])


def _sparse_synapses(conn) -> dict[str, list[np.ndarray]]:
    """The artifact's non-zero synapses of a CSR connection per receptor tag."""
    post = np.repeat(np.arange(conn.n_out, dtype=np.int64), np.diff(np.asarray(conn.arrays["indptr"])))
    pre = np.asarray(conn.arrays["indices"], dtype=np.int64)
    word = np.asarray(conn.arrays["weight"], dtype=np.int64)
    types = np.asarray(conn.arrays["synapse_type"], dtype=np.int64)
    out = {}
    for kind, tag in ((0, "exc"), (1, "inh")):
        sel = (types == kind) & (word != 0)
        out[tag] = [pre[sel], post[sel], word[sel], np.full(int(sel.sum()), int(conn.attrs["delay"]), dtype=np.int64)]
    return out


def pool_dense_readback(built, plan, program, probe: Probe) -> dict[str, dict[str, Any]]:
    """Per ``<conn>:exc|inh`` of every local-only pool + dense connection: what sPyNNaker encoded
    (``have``, expanded by :func:`expand_pool_dense`) and the artifact's synapses (``want``)."""
    out: dict[str, dict[str, Any]] = {}
    for name, pds in by_connection(plan.pool_dense).items():
        problems: list[str] = []
        have = _pool_dense_have(pds, built, probe, problems)
        want = _sparse_synapses(program_connection(program, name))
        out.update(_compared(name, have, want, problems,
                             {"connector": "PoolDenseConnector", "projections": len(pds)}))
    return out


def _compared(name: str, have: dict[str, list], want: dict[str, list], problems: list[str],
              extra: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``<name>:exc|inh`` -> what was read back (``have``: lists of (pre, post, word, delay) parts),
    what the artifact holds (``want``) and the report entry; receptors with neither are left out."""
    out: dict[str, dict[str, Any]] = {}
    for tag in sorted(set(have) | set(want)):
        parts = have.get(tag, [])
        got = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, np.int64) for i in range(4)]
        expected = want.get(tag, [np.zeros(0, np.int64)] * 4)
        if not got[0].size and not expected[0].size:
            continue
        out[f"{name}:{tag}"] = {"have": got, "want": expected, "entry": {
            "connection": name, "receptor": {"exc": "excitatory", "inh": "inhibitory"}.get(tag, tag),
            "local_only": True, **extra, "synapses": int(expected[0].size), "read_back": int(got[0].size),
            "kernels_equal_plan": not problems, "problems": problems[:10]}}
    return out


def program_connection(program, name: str):
    for conn in program.connections:
        if conn.name == name:
            return conn
    raise KeyError(name)


def summary(plan, local: dict) -> dict[str, Any]:
    """The report's ``local_only`` section: the artifact's decision per conv and what was built."""
    convs: dict[str, int] = {}
    for item in list(plan.convs) + list(getattr(plan, "pool_dense", [])):
        convs[item.connection] = convs.get(item.connection, 0) + 1
    return {name: {**choice, "projections": convs.get(name, 0),
                   "kernels_equal_plan": all(v["entry"]["kernels_equal_plan"] for k, v in local.items()
                                             if k.rsplit(":", 1)[0] == name)}
            for name, choice in plan.local_only.items()}
