"""Networks of other libraries: bias-free linear stacks of PyTorch in and out.

A deep linear network in PyTorch is a ``torch.nn.Sequential`` of ``torch.nn.Linear(d_{i-1}, d_i,
bias=False)`` layers. Layer ``i``'s ``weight`` has shape ``(d_i, d_{i-1})``, the shape of ``W_i``,
and the module maps a batch of inputs ``x`` of shape ``(n, d_0)`` (one sample per row) to
``x W^T``, ``W = W_h ... W_1``: the same network as the point ``(W_1, ..., W_h)``, with samples as
rows instead of columns. A model trained on the user's data is in the data frame: pass it through
:meth:`quotient.problem.Problem.from_data_frame` before a flow, and back through
:meth:`~quotient.problem.Problem.to_data_frame` (``problem.data_loss`` takes it as it is).

Arrays of torch or JAX are accepted as layers wherever a point is (see
:func:`quotient.network.as_point`); this module is only needed for whole modules.

PyTorch is an optional dependency: ``pip install 'quotient[torch]'`` (the CPU build, pinned).
"""

from __future__ import annotations

import numpy as np

from .network import Point, as_point, widths_of

__all__ = ["from_torch", "to_torch"]


def _torch():
    """The torch module, or an ImportError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            "quotient.interop needs PyTorch, which is not installed: pip install 'quotient[torch]' "
            "(torch==2.13.0, the CPU build)"
        ) from None
    return torch


def from_torch(module) -> Point:
    """The point ``(W_1, ..., W_h)`` of a bias-free stack of linear layers.

    Parameters
    ----------
    module : torch.nn.Sequential or torch.nn.Linear
        ``nn.Sequential(nn.Linear(d_0, d_1, bias=False), ..., nn.Linear(d_{h-1}, d_h, bias=False))``
        with floating-point weights (on any device); a lone ``nn.Linear`` is a network of one layer.

    Returns
    -------
    tuple of ndarray
        ``W_i = module[i - 1].weight`` of shape ``(d_i, d_{i-1})``, float64 copies: detached from
        autograd, on the CPU, sharing no memory with the module.

    Raises
    ------
    ImportError
        If PyTorch is not installed.
    TypeError
        If ``module`` is not a ``Sequential`` or ``Linear``, holds a layer that is not an
        ``nn.Linear`` (an activation makes the network non-linear), or has weights that are not
        real floating point.
    ValueError
        If it is empty, a layer has a bias, or the widths do not chain
        (``module[i].in_features != module[i - 1].out_features``).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False), torch.nn.Linear(8, 3, bias=False))
    >>> point = from_torch(model)
    >>> [W.shape for W in point]
    [(8, 4), (3, 8)]
    """
    torch = _torch()
    nn = torch.nn
    if isinstance(module, nn.Linear):
        layers = [module]
    elif isinstance(module, nn.Sequential):
        layers = list(module)
    else:
        raise TypeError(
            "module must be a torch.nn.Sequential of bias-free torch.nn.Linear layers (or one nn.Linear); "
            f"got {type(module).__name__}"
        )
    if not layers:
        raise ValueError("module must hold at least one nn.Linear layer; got an empty nn.Sequential")
    weights = []
    for k, layer in enumerate(layers):
        where = f"module[{k}]" if isinstance(module, nn.Sequential) else "module"
        if not isinstance(layer, nn.Linear):
            raise TypeError(
                f"{where} is {type(layer).__name__}, not nn.Linear: from_torch takes deep linear networks, "
                "a Sequential of bias-free nn.Linear layers only (no activations, norms or dropout)"
            )
        if layer.bias is not None:
            raise ValueError(
                f"{where} = {layer} has a bias; deep linear networks here have none: build the layers with bias=False"
            )
        weight = layer.weight
        if not weight.is_floating_point():
            raise TypeError(f"{where}.weight must be real floating point; got dtype {weight.dtype}")
        if k > 0 and weight.shape[1] != weights[-1].shape[0]:
            raise ValueError(
                f"module's widths do not chain: {where} has in_features {weight.shape[1]} but module[{k - 1}] "
                f"has out_features {weights[-1].shape[0]}"
            )
        weights.append(weight)
    point = as_point(tuple(weights), "module")
    return tuple(np.array(W, dtype=np.float64, copy=True) for W in point)


def to_torch(point):
    """The ``torch.nn.Sequential`` of bias-free float64 ``nn.Linear`` layers of a point.

    Parameters
    ----------
    point : sequence of array_like
        Layers ``(W_1, ..., W_h)``, ``W_i`` of shape ``(d_i, d_{i-1})`` (numpy, torch or JAX).

    Returns
    -------
    torch.nn.Sequential
        ``h`` layers ``nn.Linear(d_{i-1}, d_i, bias=False, dtype=torch.float64)`` on the CPU with
        ``weight = W_i`` (copied), so that ``module(x) = x W^T`` for ``x`` of shape ``(n, d_0)``,
        i.e. ``module(x.T).T = end_to_end(point) @ x`` for columns ``x`` of shape ``(d_0, n)``.
        ``module.float()`` gives float32 layers.

    Raises
    ------
    ImportError
        If PyTorch is not installed.
    TypeError, ValueError
        As :func:`quotient.network.as_point` for a point that is not a tuple of finite real
        matrices whose shapes chain.
    """
    torch = _torch()
    point = as_point(point, "point")
    widths = widths_of(point)
    layers = []
    for i, W in enumerate(point, start=1):
        layer = torch.nn.utils.skip_init(torch.nn.Linear, widths[i - 1], widths[i], bias=False, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(np.array(W, dtype=np.float64)))  # a writable copy: points may be read-only
        layers.append(layer)
    return torch.nn.Sequential(*layers)
