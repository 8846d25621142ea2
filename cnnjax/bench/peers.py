"""The peers the benchmark compares with: PyTorch (optional) and plain Flax models."""
from __future__ import annotations

import flax.linen as fnn
import numpy as np

from cnnjax.bench.config import ConvLayer


def load_torch():
    """The torch module, or ``None`` when it is absent or disabled."""
    try:
        import torch  # an optional peer: imported only here, when benchmarking it
    except ImportError:
        return None
    return torch


def nchw(a: np.ndarray) -> np.ndarray:
    """A writable C-contiguous copy (torch.from_numpy warns on read-only JAX buffers)."""
    return np.array(a, order="C", copy=True)


def flax_conv_fn(layer: ConvLayer):
    module = fnn.Conv(layer.c_out, (layer.k, layer.k), strides=layer.stride,
                      padding=[(layer.padding, layer.padding)] * 2, use_bias=False,
                      feature_group_count=layer.groups)
    return lambda x, w: module.apply({"params": {"kernel": w}}, x)


def torch_conv_candidates(torch, layer: ConvLayer, x: np.ndarray, w: np.ndarray, ct: np.ndarray):
    f = torch.nn.functional.conv2d
    # PyTorch's native layout: NCHW input, OIHW weight.
    tx = torch.from_numpy(nchw(x.transpose(0, 3, 1, 2)))
    tw = torch.from_numpy(nchw(w.transpose(3, 2, 0, 1)))
    tct = torch.from_numpy(nchw(ct.transpose(0, 3, 1, 2)))
    kw = {"stride": layer.stride, "padding": layer.padding, "groups": layer.groups}

    def fwd():
        with torch.no_grad():
            return f(tx, tw, **kw)

    gx, gw = tx.clone().requires_grad_(True), tw.clone().requires_grad_(True)

    def fwd_bwd():
        y = f(gx, gw, **kw)
        return torch.autograd.grad(y, (gx, gw), tct)
    return fwd, fwd_bwd


def flax_model(name: str):
    """The same architecture as ``cnnjax.models.get(name)`` from plain ``flax.linen`` parts."""
    class PlainMnistNet(fnn.Module):
        @fnn.compact
        def __call__(self, x, *, train: bool):
            x = fnn.relu(fnn.Conv(32, (3, 3), padding="VALID")(x))
            x = fnn.relu(fnn.Conv(64, (3, 3), padding="VALID")(x))
            x = fnn.max_pool(x, (2, 2), (2, 2))
            x = fnn.Dropout(0.25, broadcast_dims=(1, 2), deterministic=not train)(x)
            x = fnn.relu(fnn.Dense(128)(x.reshape(x.shape[0], -1)))
            x = fnn.Dropout(0.5, deterministic=not train)(x)
            return fnn.log_softmax(fnn.Dense(10)(x))

    class PlainLeNet5(fnn.Module):
        @fnn.compact
        def __call__(self, x, *, train: bool):
            x = fnn.relu(fnn.Conv(20, (5, 5), padding=[(2, 2), (2, 2)])(x))
            x = fnn.max_pool(x, (2, 2), (2, 2))
            x = fnn.relu(fnn.Conv(50, (5, 5), padding=[(2, 2), (2, 2)])(x))
            x = fnn.max_pool(x, (2, 2), (2, 2))
            x = fnn.relu(fnn.Dense(500)(x.reshape(x.shape[0], -1)))
            return fnn.Dense(10)(x)

    return {"mnistnet": PlainMnistNet, "lenet5": PlainLeNet5}[name]()


def torch_model(torch, name: str):
    nn = torch.nn
    if name == "mnistnet":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout2d(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, 10), nn.LogSoftmax(dim=1))
    return nn.Sequential(
        nn.Conv2d(1, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(2450, 500), nn.ReLU(), nn.Linear(500, 10))


def torch_trainer(torch, name: str, x: np.ndarray, y: np.ndarray):
    torch.manual_seed(0)
    model = torch_model(torch, name)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tx = torch.from_numpy(nchw(x.transpose(0, 3, 1, 2)))
    ty = torch.from_numpy(y.astype(np.int64))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(tx), ty)
        loss.backward()
        opt.step()
        return loss.item()
    return step
