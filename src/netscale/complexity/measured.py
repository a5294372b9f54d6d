"""Measured complexity of any ``torch.nn.Module``, by intercepting the ops PyTorch dispatches.

The model runs on the ``meta`` device under a ``TorchDispatchMode``: shapes propagate but
no memory is allocated and nothing is computed, so even RegNetY-32GF at 448 px is counted
in about a second with no activation memory. What remains is Python work per dispatched op,
kept small: an op seen before with the same argument signature (every repeated block of a
stage) is answered from a process-wide memo of output shapes instead of its meta kernel;
in-place activations and batch-norm are answered from their input's metadata; the module
tree is walked once (``benchmarks/bench_complexity.py`` compares a ResNet-50 count with one
real forward under ``FlopCounterMode``).

Counted (docs/conventions.md, "Counting conventions"; flops = multiply-adds):

* convolutions (any dimensionality, groups, transposed): flops = output elements x
  (C_in / groups) x kernel volume (+ output elements for the bias); acts = output elements;
* matmul-type ops (``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``addbmm``, fused attention, the
  fused ``_addmm_activation``, the int8/fp8 ``_int_mm``/``_scaled_mm``): flops = m·k·n per
  matrix product (+ m·n for an added bias/input); matrix-vector and vector ops (``mv``,
  ``addmv``, ``dot``, ``vdot``, ``addr``): one multiply-add per product term (+ one per output
  for ``addmv``'s added vector); acts = output elements;
* max-pool (fixed or adaptive): acts = output elements, no flops.

Free by convention (counted as zero, not reported): element-wise activations, adds and
multiplies (residuals, SE gating), batch-norm, average pooling and means, dropout, and
shape/view/copy ops. Any other op is reported in ``uncounted`` with how often it ran, so
nothing is silently ignored (e.g. ``aten._softmax``, ``aten.native_layer_norm``).

The caller's model is never changed: a model with real weights is counted on a meta copy
(parameters and buffers are replaced by meta tensors of the same shape; no weight is copied),
and tensors that the forward creates without a device (``torch.eye(n)``, ``torch.arange(n)``,
``torch.zeros(...)``) are created on ``meta`` too. :func:`register_op_counter` adds a counter
for any op (as fvcore's handles do); ops without one are listed with their call counts.

Backward flops (optional) count the matrix products and convolution gradients that autograd
dispatches (grad-input and grad-weight, each as many multiply-adds as the forward op).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from netscale.complexity.record import Complexity, ComplexityRecord
from netscale.models import build_model

if TYPE_CHECKING:
    from typing_extensions import Unpack

aten = torch.ops.aten

# --------------------------------------------------------------------- op handlers
# A handler returns (flops, acts) for one call, given (args, kwargs, out, count_bias).

_Handler = Callable[[tuple[Any, ...], dict[str, Any], Any, bool], tuple[int, int]]


def _numel(t: Any) -> int:
    return int(t.numel()) if isinstance(t, torch.Tensor) else 0


def _conv_flops(x_shape: Sequence[int], w_shape: Sequence[int], out_shape: Sequence[int],
                transposed: bool) -> int:
    kernel = math.prod(w_shape[2:])
    if not transposed:
        # weight: (C_out, C_in/groups, *k); every output element needs C_in/groups * k MACs
        return math.prod(out_shape) * w_shape[1] * kernel
    # transposed weight: (C_in, C_out/groups, *k); every input element feeds C_out/groups * k
    return math.prod(x_shape) * w_shape[1] * kernel


def _conv(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, bias: bool) -> tuple[int, int]:
    x, w, b = args[0], args[1], args[2] if len(args) > 2 else kwargs.get("bias")
    transposed = bool(args[6]) if len(args) > 6 else bool(kwargs.get("transposed", False))
    flops = _conv_flops(x.shape, w.shape, out.shape, transposed)
    if bias and b is not None:
        flops += out.numel()
    return flops, out.numel()


def _mm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, bias: bool) -> tuple[int, int]:
    a, b = args[0], args[1]
    return a.shape[0] * a.shape[1] * b.shape[1], out.numel()


def _addmm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, bias: bool) -> tuple[int, int]:
    a, b = args[1], args[2]
    flops = a.shape[0] * a.shape[1] * b.shape[1]
    if bias:
        flops += out.numel()
    return flops, out.numel()


def _bmm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, bias: bool) -> tuple[int, int]:
    a, b = args[0], args[1]
    return a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2], out.numel()


def _baddbmm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
             bias: bool) -> tuple[int, int]:
    a, b = args[1], args[2]
    flops = a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    if bias:
        flops += out.numel()
    return flops, out.numel()


def _mv(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, bias: bool) -> tuple[int, int]:
    m = args[0]  # (m, n) @ (n,)
    return m.shape[0] * m.shape[1], out.numel()


def _addmv(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
           bias: bool) -> tuple[int, int]:
    m = args[1]  # self (m,) + mat (m, n) @ vec (n,)
    return m.shape[0] * m.shape[1] + (out.numel() if bias else 0), out.numel()


def _dot(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, bias: bool) -> tuple[int, int]:
    return args[0].numel(), out.numel()


def _addr(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
          bias: bool) -> tuple[int, int]:
    # self (m, n) + vec1 (m,) x vec2 (n,): one multiply-add per output element
    return out.numel(), out.numel()


def _addbmm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
            bias: bool) -> tuple[int, int]:
    a, b = args[1], args[2]  # self (n, p) + sum over the batch of (B, n, m) @ (B, m, p)
    flops = a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    return flops + (out.numel() if bias else 0), out.numel()


def _scaled_mm(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
               bias: bool) -> tuple[int, int]:
    a, b = args[0], args[1]  # (m, k) @ (k, n), scaled (fp8); an optional bias (n,)
    has_bias = (args[4] if len(args) > 4 else kwargs.get("bias")) is not None
    flops = a.shape[0] * a.shape[1] * b.shape[1]
    return flops + (out.numel() if bias and has_bias else 0), out.numel()


def _sdpa(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any, bias: bool) -> tuple[int, int]:
    q, k, v = args[0], args[1], args[2]
    # q: (..., L, E), k: (..., S, E), v: (..., S, Ev): QK^T and AV products
    batch = math.prod(q.shape[:-2])
    length, e = q.shape[-2], q.shape[-1]
    s, ev = k.shape[-2], v.shape[-1]
    first = out[0] if isinstance(out, (tuple, list)) else out
    return batch * length * s * (e + ev), _numel(first)


def _maxpool(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
             bias: bool) -> tuple[int, int]:
    first = out[0] if isinstance(out, (tuple, list)) else out
    return 0, _numel(first)


def _packets(*names: str) -> list[Any]:
    out = []
    for name in names:
        packet = getattr(aten, name, None)
        if packet is not None:
            out.append(packet)
    return out


_HANDLERS: dict[Any, _Handler] = {}
_OP_HANDLERS: tuple[tuple[tuple[str, ...], _Handler], ...] = (
    (("convolution", "_convolution", "cudnn_convolution", "mkldnn_convolution"), _conv),
    (("mm", "_int_mm"), _mm),
    (("addmm", "_addmm_activation"), _addmm),
    (("_scaled_mm",), _scaled_mm),
    (("mv",), _mv),
    (("addmv",), _addmv),
    (("dot", "vdot"), _dot),
    (("addr",), _addr),
    (("addbmm",), _addbmm),
    (("bmm",), _bmm),
    (("baddbmm",), _baddbmm),
)
for _names, _handler in _OP_HANDLERS:
    for _p in _packets(*_names):
        _HANDLERS[_p] = _handler
for _p in _packets(
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_flash_attention_forward",
    "_efficient_attention_forward",
):
    _HANDLERS[_p] = _sdpa
for _p in _packets("max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices",
                   "max_pool3d_with_indices", "max_pool1d_with_indices",
                   "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"):
    _HANDLERS[_p] = _maxpool

# Free by convention (docs/conventions.md, "Counting conventions"): activations, adds, muls,
# norms, averaging, views...
_FREE_NAMES = """
relu relu_ silu silu_ sigmoid sigmoid_ gelu gelu_ tanh tanh_ hardswish hardswish_ hardsigmoid
hardsigmoid_ hardtanh hardtanh_ leaky_relu leaky_relu_ elu elu_ mish mish_ clamp clamp_
clamp_min clamp_min_ threshold threshold_ prelu _prelu_kernel glu log_sigmoid_forward softplus
add add_ sub sub_ mul mul_ div div_ neg rsub addcmul addcmul_ addcdiv addcdiv_ where
native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training
_native_batch_norm_legit_functional cudnn_batch_norm miopen_batch_norm batch_norm
_batch_norm_impl_index
mean sum avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d
adaptive_avg_pool3d _adaptive_avg_pool2d _adaptive_avg_pool3d
dropout native_dropout bernoulli bernoulli_ feature_dropout alpha_dropout
view _unsafe_view reshape _reshape_alias as_strided flatten unflatten squeeze unsqueeze
permute transpose t expand expand_as contiguous clone copy copy_ _to_copy to detach alias
lift_fresh lift_fresh_copy slice select index_select narrow split split_with_sizes chunk
unbind cat stack empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like
new_zeros ones ones_like new_ones full full_like new_full fill fill_ zero_ scalar_tensor
_local_scalar_dense arange masked_fill masked_fill_ pad constant_pad_nd reflection_pad2d
replication_pad2d repeat expand_copy view_copy _reshape_copy sym_size sym_stride sym_numel
sym_storage_offset is_same_size _has_compatible_shallow_copy_type resize_ set_
""".split()
_FREE = {p for p in _packets(*_FREE_NAMES)}

# User counters (register_op_counter): op packet -> fn(args, kwargs, out) -> flops | (flops, acts)
UserCounter = Callable[[tuple[Any, ...], dict[str, Any], Any], "int | tuple[int, int]"]
_USER: dict[Any, UserCounter] = {}


def _packet_of(op: Any) -> Any:
    """The overload packet of ``op``: an aten op (packet or overload) or a name like
    ``"aten::_softmax"``, ``"aten._softmax"`` or ``"_softmax"``."""
    if isinstance(op, str):
        name = op.strip()
        for prefix in ("aten::", "aten.", "torch.ops.aten."):
            if name.startswith(prefix):
                name = name[len(prefix):]
        name = name.split(".")[0]
        packet = getattr(aten, name, None)
        if packet is None:
            raise ValueError(f"unknown aten op {op!r}; give e.g. 'aten::_softmax' or "
                             "torch.ops.aten._softmax")
        return packet
    packet = getattr(op, "_overloadpacket", None)
    if packet is not None:
        return packet
    if isinstance(op, torch._ops.OpOverloadPacket):
        return op
    raise ValueError(f"{op!r} is not an aten op; give e.g. torch.ops.aten._softmax")


def register_op_counter(op: Any, fn: UserCounter) -> None:
    """Counts ``op`` with ``fn(args, kwargs, out)`` from now on (this process).

    ``fn`` returns the op's flops (multiply-adds) or ``(flops, acts)``; return 0 to declare
    an op free. It takes precedence over the built-in rules, in forward and backward.
    ``op``: ``torch.ops.aten.X`` (packet or overload) or the name ``"aten::X"``.
    """
    if not callable(fn):
        raise TypeError("register_op_counter needs a callable fn(args, kwargs, out)")
    _USER[_packet_of(op)] = fn


def unregister_op_counter(op: Any) -> None:
    """Removes a counter added by :func:`register_op_counter` (no error if there is none)."""
    _USER.pop(_packet_of(op), None)


def registered_op_counters() -> dict[str, UserCounter]:
    """The user-registered counters, by op name."""
    return {str(k): v for k, v in _USER.items()}


def _user_count(packet: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                out: Any) -> tuple[int, int]:
    value = _USER[packet](args, kwargs, out)
    if isinstance(value, tuple):
        return int(value[0]), int(value[1])
    return int(value), 0


# Backward: gradient matmuls dispatch as mm/bmm (counted by the handlers above); these are
# counted specially.
_CONV_BACKWARD = set(_packets("convolution_backward"))


def _conv_backward_flops(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    grad_out, x, w = args[0], args[1], args[2]
    transposed = bool(args[7]) if len(args) > 7 else False
    mask = args[10] if len(args) > 10 else kwargs.get("output_mask", (True, True, True))
    fwd = _conv_flops(x.shape, w.shape, grad_out.shape, transposed)
    return fwd * (int(bool(mask[0])) + int(bool(mask[1])))


# --------------------------------------------------------------------- the counting mode


# ----------------------------------------------------------- output-shape memo
# On ``meta`` an op computes nothing, yet its meta kernel (often a Python decomposition:
# elementwise ops, batch-norm, convolution) still costs tens of microseconds. A network repeats
# the same op on the same shapes many times (every block of a stage), so the mode remembers
# the outputs' shapes, strides and dtypes per (op, argument signature) and, on a repeat, makes
# fresh empty meta tensors instead of running the kernel again. Only ops that neither mutate
# nor alias their inputs are remembered this way; an in-place op is remembered only as
# "returns its first argument" (the kernel having shown that on the same signature).

_SELF = object()  # memo marker: the op returned its first argument (in place)
_NO_MEMO = object()  # memo marker: this op/signature cannot be replayed
_Spec = Any  # ("t", shape, stride, dtype, device) | tuple[_Spec, ...] | _SELF | hashable value


# In-place unary activations (``nn.ReLU(inplace=True)`` and the like): the result is the
# input itself, so even the first call with a new shape needs no kernel.
_INPLACE_UNARY = set(_packets(
    "relu_", "relu6_", "silu_", "sigmoid_", "tanh_", "hardswish_", "hardsigmoid_", "hardtanh_",
    "leaky_relu_", "elu_", "mish_", "gelu_", "clamp_", "clamp_min_", "threshold_"))
# Batch-norm: out has the input's shape and strides; the saved statistics (unused without
# autograd) are per channel. Taken only when weight, bias and running stats have C elements
# (otherwise the kernel runs and raises as usual).
_BATCH_NORM = set(_packets("native_batch_norm", "_native_batch_norm_legit_no_training"))
_FLOATS = (torch.float32, torch.float64)


def _shortcut(func: Any, args: tuple[Any, ...]) -> Any:
    """The output of a common op computed from its arguments' metadata, or None."""
    packet = func._overloadpacket
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or not x.is_meta:
        return None
    if packet in _INPLACE_UNARY:
        return x
    if (packet in _BATCH_NORM and x.dtype in _FLOATS and x.dim() >= 2
            and all(t is None or (isinstance(t, torch.Tensor) and t.shape == (x.shape[1],))
                    for t in args[1:5])):
        stat = torch.empty((x.shape[1],), dtype=x.dtype, device="meta")
        out = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")
        return out, stat, torch.empty_like(stat)
    return None


def _memo_kind(func: Any) -> int:
    """0: do not memoise, 1: pure (fresh outputs), 2: in place on its first argument."""
    schema = func._schema
    aliased = any(r.alias_info is not None for r in schema.returns)
    if not schema.is_mutable and not aliased:
        return 1
    if schema.is_mutable and len(schema.returns) == 1:
        return 2
    return 0


_MEMO_KIND: dict[Any, int] = {}
# Shared by all counts in this process (the outputs' metadata is a pure function of the op
# and its signature), so a search that counts many similar candidates replays most ops.
_MEMO: dict[Any, Any] = {}
_MEMO_MAX = 20_000  # entries, about 1.3 kB each; the memo is cleared when it exceeds this


def _sig(x: Any) -> Any:
    """A hashable signature of one argument (tensors by shape, stride, dtype, device)."""
    if isinstance(x, torch.Tensor):
        return (x.shape, x.stride(), x.dtype, x.device)
    if isinstance(x, (list, tuple)):
        return tuple(_sig(v) for v in x)
    if isinstance(x, (bool, int, float, complex)):
        return (type(x), x)  # 4, 4.0 and True hash alike but give different dtypes
    return x


def _out_spec(out: Any) -> _Spec:
    if isinstance(out, torch.Tensor):
        if not out.is_meta:
            return _NO_MEMO
        return ("t", tuple(out.shape), out.stride(), out.dtype, out.device)
    if isinstance(out, (list, tuple)):
        specs = tuple(_out_spec(v) for v in out)
        return _NO_MEMO if any(s is _NO_MEMO for s in specs) else (type(out), specs)
    if out is None or isinstance(out, (int, float, bool)):
        return ("v", out)
    return _NO_MEMO


def _replay(spec: _Spec) -> Any:
    if spec[0] == "t":
        return torch.empty_strided(spec[1], spec[2], dtype=spec[3], device=spec[4])
    if spec[0] == "v":
        return spec[1]
    return spec[0](_replay(s) for s in spec[1])


class _CountingMode(TorchDispatchMode):
    def __init__(self, count_bias: bool, module_stack: list[str]) -> None:
        super().__init__()
        self.count_bias = count_bias
        self.stack = module_stack
        self.backward = False
        self.flops = 0
        self.acts = 0
        self.backward_flops = 0
        self.per_module: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.uncounted: Counter[str] = Counter()
        self.uncounted_backward: Counter[str] = Counter()
        self.memo = _MEMO
        if len(_MEMO) > _MEMO_MAX:
            _MEMO.clear()

    def _run(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``func(*args, **kwargs)``, replayed from the memo when the signature repeats."""
        if self.backward:  # autograd's bookkeeping runs here: always run the kernel
            return func(*args, **kwargs)
        kind = _MEMO_KIND.get(func)
        if kind is None:
            kind = _MEMO_KIND[func] = _memo_kind(func)
        if not kind:
            return func(*args, **kwargs)
        quick = _shortcut(func, args)
        if quick is not None:
            return quick
        try:
            key = (func, torch.get_default_dtype(), _sig(args),
                   _sig(tuple(kwargs.items())) if kwargs else None)
            spec = self.memo.get(key)
        except TypeError:  # an unhashable argument: no memo for this call
            return func(*args, **kwargs)
        if spec is not None:
            if spec is _SELF:
                return args[0]
            if spec is not _NO_MEMO:
                return _replay(spec)
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        if kind == 2:  # replayable only if it returned its first argument, shape unchanged
            same = bool(args) and out is args[0] and _sig(args[0]) == key[2][0]
            self.memo[key] = _SELF if same else _NO_MEMO
        else:
            self.memo[key] = _out_spec(out)
        return out

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        out = self._run(func, args, kwargs)
        packet = func._overloadpacket
        if self.backward:
            if packet in _USER:
                self.backward_flops += _user_count(packet, args, kwargs, out)[0]
            elif packet in _CONV_BACKWARD:
                self.backward_flops += _conv_backward_flops(args, kwargs)
            elif packet in _HANDLERS:
                self.backward_flops += _HANDLERS[packet](args, kwargs, out, self.count_bias)[0]
            elif packet not in _FREE:
                self.uncounted_backward[str(packet)] += 1
            return out
        handler = _HANDLERS.get(packet)
        if packet in _USER or handler is not None:
            if packet in _USER:
                flops, acts = _user_count(packet, args, kwargs, out)
            elif handler is not None:
                flops, acts = handler(args, kwargs, out, self.count_bias)
            self.flops += flops
            self.acts += acts
            for name in self.stack:
                row = self.per_module[name]
                row[0] += flops
                row[1] += acts
        elif packet not in _FREE:
            self.uncounted[str(packet)] += 1
        return out


def _to_meta_input(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(tuple(int(s) for s in shape), device="meta", dtype=dtype)


def _on_meta(model: nn.Module) -> bool:
    tensors = [*model.parameters(), *model.buffers()]
    return all(t.is_meta for t in tensors)


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters and buffers are meta tensors of the same shapes.

    No weight is copied (the copy is built with ``copy.deepcopy`` and a memo that maps every
    parameter, buffer and plain tensor attribute to its meta twin), and ``model`` itself is
    left untouched. Shared
    (tied) parameters stay shared in the copy.
    """
    import copy

    memo: dict[int, Any] = {}
    for p in model.parameters():
        if id(p) not in memo:
            memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"),
                                       requires_grad=p.requires_grad)
    for b in model.buffers():
        if id(b) not in memo:
            memo[id(b)] = torch.empty_like(b, device="meta")
    for m in model.modules():  # plain tensor attributes (not registered as buffers)
        for v in vars(m).values():
            if isinstance(v, torch.Tensor) and id(v) not in memo and not v.is_meta:
                memo[id(v)] = torch.empty_like(v, device="meta")
    try:
        return copy.deepcopy(model, memo)
    except Exception as exc:
        raise ValueError(
            f"cannot make a meta copy of {type(model).__name__} to count it "
            f"({type(exc).__name__}: {exc}); build the model on the meta device "
            "(e.g. `with torch.device('meta'): model = make()`) and pass that"
        ) from None


class CountOptions(TypedDict, total=False):
    """The keyword options of :func:`count_measured` (all optional)."""

    backward: bool
    per_module: bool
    count_bias: bool
    name: str | None


_COUNT_OPTIONS = frozenset(CountOptions.__annotations__)


def count_measured(
    model: nn.Module,
    input_shape: Sequence[int] | None = None,
    *,
    inputs: Sequence[torch.Tensor] | None = None,
    batch_size: int = 1,
    dtype: torch.dtype = torch.float32,
    **options: Unpack[CountOptions],
) -> ComplexityRecord:
    """Counts flops (multiply-adds), params and acts of ``model`` by running it on ``meta``.

    ``input_shape`` excludes the batch dimension (e.g. ``(3, 224, 224)``); ``inputs`` may be
    given instead (any tensors; they are moved to ``meta``). ``model`` is never modified: a
    model with real weights is counted on a meta copy (:func:`meta_copy`); a model already on
    ``meta`` is used as is (its train/eval mode and ``requires_grad`` flags are restored).
    Tensors the forward creates without a device are created on ``meta``. The keyword
    options (:class:`CountOptions`): ``backward=True`` also counts the backward pass,
    ``per_module=False`` skips the per-module parts, ``name`` labels the record, and
    ``count_bias=False`` leaves out bias adds, matching
    ``torch.utils.flop_counter.FlopCounterMode`` (which counts 2 flops per multiply-add and
    ignores biases).
    """
    for key in options:
        if key not in _COUNT_OPTIONS:
            raise TypeError(f"count_measured() got an unexpected keyword argument {key!r}")
    backward = options.get("backward", False)
    per_module = options.get("per_module", True)
    if not _on_meta(model):
        model = meta_copy(model)
    subtree = _subtree_params(model)
    params = subtree[""] if subtree else sum(p.numel() for p in model.parameters())
    args = _meta_args(input_shape, inputs, batch_size, dtype)
    named = list(model.named_modules())
    mode = _CountingMode(options.get("count_bias", True), [])
    _run_counted(model, args, mode, backward=backward, per_module=per_module)
    parts = _module_parts(named, mode, subtree) if per_module else []
    shape = tuple(args[0].shape) if isinstance(args[0], torch.Tensor) else None
    resolution = int(shape[-1]) if shape is not None and len(shape) >= 3 else 0
    uncounted = dict(mode.uncounted)
    if backward:
        for k, v in mode.uncounted_backward.items():
            uncounted[f"{k} (backward)"] = v
    by_name = dict(named)
    return ComplexityRecord(
        model=options.get("name") or type(model).__name__,
        resolution=resolution,
        flops=mode.flops,
        params=params,
        acts=mode.acts,
        method="measured",
        parts=tuple(parts),
        backward_flops=mode.backward_flops if backward else None,
        uncounted=uncounted,
        input_shape=shape,
        part_types={n: type(by_name[n]).__name__ for n, _ in parts},
    )


def _meta_args(input_shape: Sequence[int] | None, inputs: Sequence[torch.Tensor] | None,
               batch_size: int, dtype: torch.dtype) -> list[Any]:
    """The forward's arguments on ``meta``: a tensor of ``input_shape`` or the ``inputs``."""
    if inputs is None:
        if input_shape is None:
            raise ValueError("give input_shape (without batch dimension) or inputs")
        return [_to_meta_input((batch_size, *input_shape), dtype)]
    return [t.to("meta") if isinstance(t, torch.Tensor) else t for t in inputs]


def _run_counted(model: nn.Module, args: list[Any], mode: _CountingMode, *, backward: bool,
                 per_module: bool) -> None:
    """Runs the meta model under ``mode`` (eval mode; the train flags are restored after)."""
    named = list(model.named_modules())
    handles = _stack_hooks(named, mode.stack) if per_module else []
    was_training = [(m, m.training) for _, m in named]
    model.eval()
    try:
        if backward:
            _run_backward(model, args, mode)
        else:
            # torch.device("meta") is a TorchFunctionMode: factory calls without a device
            # (torch.eye(n), torch.arange(n), torch.zeros(...)) create meta tensors.
            with torch.no_grad(), torch.device("meta"), mode:
                model(*args)
    finally:
        for h in handles:
            h.remove()
        for m, t in was_training:
            m.__dict__["training"] = t  # what Module.__setattr__ does for a plain attribute


def _module_parts(named: list[tuple[str, nn.Module]], mode: _CountingMode,
                  subtree: dict[str, int] | None) -> list[tuple[str, Complexity]]:
    """The per-module (flops, params, acts) of every submodule that has any."""
    mod_params = subtree or {n: sum(p.numel() for p in m.parameters()) for n, m in named}
    parts: list[tuple[str, Complexity]] = []
    for n in (n for n, _ in named if n):
        f, a = mode.per_module.get(n, (0, 0))
        if f or a or mod_params[n]:
            parts.append((n, Complexity(f, mod_params[n], a)))
    return parts


def _stack_hooks(named: list[tuple[str, nn.Module]], stack: list[str]) -> list[Any]:
    """Forward hooks that keep ``stack`` = the names of the modules currently running."""
    names = {id(m): n for n, m in named}

    def pre_hook(module: nn.Module, _inputs: Any) -> None:
        stack.append(names[id(module)])

    def post_hook(module: nn.Module, _inputs: Any, _out: Any) -> None:
        if stack and stack[-1] == names[id(module)]:
            stack.pop()

    handles = []
    for n, m in named:
        if n:
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(post_hook))
    return handles


def _run_backward(model: nn.Module, args: list[Any], mode: _CountingMode) -> None:
    """Forward and backward under ``mode``; ``requires_grad`` flags restored, grads cleared."""
    grads = {p: p.requires_grad for p in model.parameters()}
    try:
        for p in grads:
            p.requires_grad_(True)
        with torch.device("meta"), mode:
            out = model(*args)
            mode.backward = True
            loss = _reduce(out)
            loss.backward()
    finally:
        for p, g in grads.items():
            p.requires_grad_(g)
            p.grad = None


def _subtree_params(model: nn.Module) -> dict[str, int] | None:
    """Parameters per module name (its own and its submodules'), in one walk of the tree.

    None when a module or a parameter appears twice (shared/tied): the caller then counts
    each module's ``parameters()``, which lists a tied parameter once.
    """
    out: dict[str, int] = {}
    seen: set[int] = set()

    def visit(m: nn.Module, prefix: str) -> int | None:
        if id(m) in seen:
            return None
        seen.add(id(m))
        total = 0
        for p in m._parameters.values():
            if p is not None:
                if id(p) in seen:
                    return None
                seen.add(id(p))
                total += p.numel()
        for name, child in m._modules.items():
            if child is not None:
                sub = visit(child, f"{prefix}.{name}" if prefix else name)
                if sub is None:
                    return None
                total += sub
        out[prefix] = total
        return total

    return out if visit(model, "") is not None else None


def _reduce(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out.float().sum()
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        tensors = [_reduce(o) for o in out if isinstance(o, (torch.Tensor, list, tuple, dict))]
        if tensors:
            return sum(tensors[1:], tensors[0])
    raise ValueError("backward counting needs the model to return tensors")


def measure_spec(spec: Any, resolution: int | None = None, *, backward: bool = False,
                 per_module: bool = True) -> ComplexityRecord:
    """Builds ``spec`` on the meta device and measures it at ``resolution``."""
    res = spec.resolution if resolution is None else int(resolution)
    model = build_model(spec, device="meta")
    return count_measured(model, (spec.in_channels, res, res), backward=backward,
                   per_module=per_module, name=spec.name)
