"""Looking at what a recurrent state remembers (Chapter 2).

- :func:`perturbation_effect`: change one input step and measure how far the change
  travels through the outputs.
- :func:`record_states`: the hidden state of a :class:`~book_utils.models.SequenceClassifier`
  after every step, and what its head would predict from each one.
- :func:`pca`: a principal-component projection written with ``torch.linalg.svd``.
- :func:`linear_probe_accuracy`: how much a linear read-out can decode from each step's state.
- :func:`cell_from_layer` and :func:`run_in_chunks`: a layer is a cell in a loop,
  and a long sequence can be read in pieces if the state is carried over.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_float, check_int, check_tensor, check_type


def _first_parameter_device(module: nn.Module) -> torch.device:
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


@torch.no_grad()
def perturbation_effect(
    recurrent: nn.Module, x: torch.Tensor, delta: torch.Tensor, step: int = 0
) -> torch.Tensor:
    """How much every output changes when input step ``step`` is nudged by ``delta``.

    ``recurrent`` is a layer called like ``nn.RNN(batch_first=True)``: it maps
    ``x`` of shape (batch, time, features) to ``(outputs, final_state)`` with
    outputs of shape (batch, time, hidden). ``delta`` has shape (features,) or
    (batch, features) and is added to ``x[:, step]``.

    Returns ``||outputs'[:, t] - outputs[:, t]||`` of shape (batch, time). Entries
    before ``step`` are exactly zero: a state cannot depend on inputs it has not seen.
    """
    check_type("recurrent", recurrent, nn.Module)
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
    check_tensor("delta", delta, dim=(1, 2), floating=True, layout="(features,) or (batch, features)")
    batch, time, features = x.shape
    if delta.shape not in ((features,), (batch, features)):
        raise ValueError(
            f"delta must have shape ({features},) or ({batch}, {features}), got {tuple(delta.shape)}"
        )
    check_int("step", step, minimum=0)
    if step >= time:
        raise ValueError(f"step must be smaller than the number of time steps {time}, got {step}")
    nudged = x.clone()
    nudged[:, step] += delta.to(x.device)
    before, _ = recurrent(x)
    after, _ = recurrent(nudged)
    return (after - before).norm(dim=2)


@dataclass
class StateTrace:
    """What a sequence classifier holds and would predict after each step.

    ``states``: (batch, time, hidden), the hidden state h_t after reading step t.
    ``probabilities``: (batch, time, classes), softmax of the head applied to each h_t;
    the last step is the classifier's actual prediction.
    """

    states: torch.Tensor
    probabilities: torch.Tensor


@torch.no_grad()
def record_states(model: nn.Module, x: torch.Tensor) -> StateTrace:
    """Run a sequence classifier over ``x`` and keep every hidden state.

    ``model`` has a ``recurrent`` layer (called like ``nn.RNN(batch_first=True)``)
    and a ``head`` that maps a state to class scores, as
    :class:`~book_utils.models.SequenceClassifier` does. ``x`` has shape
    (batch, time, features) and is moved to the model's device; the trace comes
    back on the CPU, ready to plot.
    """
    check_type("model", model, nn.Module)
    for part in ("recurrent", "head"):
        if not isinstance(getattr(model, part, None), nn.Module):
            raise TypeError(
                f"model must have a '{part}' module like SequenceClassifier, "
                f"got {type(model).__name__} without one"
            )
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
    was_training = model.training
    model.eval()
    states, _ = model.recurrent(x.to(_first_parameter_device(model)))
    probabilities = model.head(states).softmax(dim=-1)
    model.train(was_training)
    return StateTrace(states.cpu(), probabilities.cpu())


@dataclass
class PCA:
    """A fitted principal-component projection.

    ``mean``: (features,), ``components``: (k, features) with orthonormal rows,
    ``explained_variance_ratio``: (k,), the share of the total variance along each.
    """

    mean: torch.Tensor
    components: torch.Tensor
    explained_variance_ratio: torch.Tensor

    def transform(self, points: torch.Tensor) -> torch.Tensor:
        """Coordinates of ``points`` (..., features) along the components: (..., k)."""
        check_tensor("points", points, floating=True)
        if points.shape[-1] != self.mean.shape[0]:
            raise ValueError(
                f"points must have {self.mean.shape[0]} features in the last dimension, "
                f"got shape {tuple(points.shape)}"
            )
        return (points - self.mean) @ self.components.T


def pca(points: torch.Tensor, n_components: int = 2) -> PCA:
    """Fit PCA to ``points`` of shape (n, features) with a singular value decomposition.

    After centring, X = U S V^T; the rows of V^T are the principal directions and
    S^2 / (n - 1) the variances along them. Each component's sign is fixed so that
    its largest entry is positive, which makes the result repeatable.
    """
    check_tensor("points", points, dim=2, floating=True, layout="(n, features)")
    n, features = points.shape
    check_int("n_components", n_components, minimum=1)
    if n_components > min(n, features):
        raise ValueError(
            f"n_components must be at most min(n, features) = {min(n, features)}, got {n_components}"
        )
    mean = points.mean(dim=0)
    _, s, vh = torch.linalg.svd(points - mean, full_matrices=False)
    components = vh[:n_components]
    largest = components.gather(1, components.abs().argmax(dim=1, keepdim=True))
    components = components * largest.sign()
    variance = s**2
    ratio = variance[:n_components] / variance.sum()
    return PCA(mean, components, ratio)


@torch.no_grad()
def cell_from_layer(layer: nn.RNN, layer_index: int = 0) -> nn.RNNCell:
    """An ``nn.RNNCell`` holding a copy of one layer's weights from an ``nn.RNN``.

    ``nn.RNN`` names its parameters ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
    ``bias_hh_l0`` (then ``_l1`` for the next layer); ``nn.RNNCell`` drops the suffix.
    """
    check_type("layer", layer, nn.RNN)
    check_int("layer_index", layer_index, minimum=0)
    if layer.bidirectional:
        raise ValueError("layer must be one-directional, got bidirectional=True")
    if layer_index >= layer.num_layers:
        raise ValueError(
            f"layer_index must be smaller than num_layers={layer.num_layers}, got {layer_index}"
        )
    in_size = layer.input_size if layer_index == 0 else layer.hidden_size
    cell = nn.RNNCell(in_size, layer.hidden_size, bias=layer.bias, nonlinearity=layer.nonlinearity)
    cell.to(device=layer.weight_ih_l0.device, dtype=layer.weight_ih_l0.dtype)
    for name, parameter in cell.named_parameters():
        parameter.copy_(getattr(layer, f"{name}_l{layer_index}"))
    return cell


def run_in_chunks(
    recurrent: nn.Module,
    x: torch.Tensor,
    chunk_len: int,
    state: torch.Tensor | tuple | None = None,
    *,
    detach: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | tuple]:
    """Read ``x`` (batch, time, features) in pieces of ``chunk_len`` steps, carrying the state.

    ``recurrent`` is called like ``nn.RNN(batch_first=True)`` as
    ``recurrent(chunk, state)``; its final state (a tensor, or a tuple such as an
    LSTM's ``(h, c)``) becomes the initial state of the next chunk. With
    ``detach=True`` the carried state is cut from the graph between chunks, so
    gradients stop at chunk borders (truncated backpropagation through time);
    the forward values are unchanged.

    Returns the outputs of every step, (batch, time, hidden), and the final state.
    """
    check_type("recurrent", recurrent, nn.Module)
    check_tensor("x", x, dim=3, floating=True, layout="(batch, time, features)")
    check_int("chunk_len", chunk_len, minimum=1)
    check_type("detach", detach, bool)
    if x.shape[1] == 0:
        raise ValueError(f"x must have at least one time step, got shape {tuple(x.shape)}")
    outputs = []
    for chunk in x.split(chunk_len, dim=1):
        if detach and state is not None:
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        out, state = recurrent(chunk, state)
        outputs.append(out)
    return torch.cat(outputs, dim=1), state


def linear_probe_accuracy(
    train_states: torch.Tensor,
    train_labels: torch.Tensor,
    test_states: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    ridge: float = 1e-3,
) -> torch.Tensor:
    """How much class information a linear read-out can find in the state at each step.

    For every step t a separate linear classifier (a *probe*) is fitted to the
    states ``train_states[:, t]`` by ridge regression onto one-hot labels, in
    closed form, and scored on ``test_states[:, t]``. States have shape
    (n, time, hidden), labels shape (n,) with class indices. ``ridge`` is added
    to the diagonal of the states' covariance matrix.

    Returns the held-out accuracy of each step's probe, shape (time,).
    """
    check_tensor("train_states", train_states, dim=3, floating=True, layout="(n, time, hidden)")
    check_tensor("test_states", test_states, dim=3, floating=True, layout="(n, time, hidden)")
    check_tensor("train_labels", train_labels, dim=1, integer=True, layout="(n,)")
    check_tensor("test_labels", test_labels, dim=1, integer=True, layout="(n,)")
    ridge = check_float("ridge", ridge, minimum=0.0, strict_minimum=True)
    if train_states.shape[1:] != test_states.shape[1:]:
        raise ValueError(
            "train_states and test_states must agree in (time, hidden), got "
            f"{tuple(train_states.shape[1:])} and {tuple(test_states.shape[1:])}"
        )
    for name, states, labels in (("train", train_states, train_labels),
                                 ("test", test_states, test_labels)):
        if labels.shape[0] != states.shape[0]:
            raise ValueError(
                f"{name}_labels must have one label per sequence ({states.shape[0]}), "
                f"got {labels.shape[0]}"
            )
    if train_labels.min() < 0 or test_labels.min() < 0:
        raise ValueError("labels must be class indices >= 0, got a negative label")
    n_classes = int(max(train_labels.max(), test_labels.max())) + 1
    x = train_states.detach().double().transpose(0, 1)                 # (time, n, hidden)
    mean = x.mean(dim=1, keepdim=True)
    targets = nn.functional.one_hot(train_labels, n_classes).double()
    target_mean = targets.mean(dim=0)
    centred = x - mean
    covariance = centred.transpose(1, 2) @ centred / x.shape[1]
    covariance = covariance + ridge * torch.eye(x.shape[2], dtype=x.dtype, device=x.device)
    weights = torch.linalg.solve(covariance, centred.transpose(1, 2) @ (targets - target_mean) / x.shape[1])
    scores = (test_states.detach().double().transpose(0, 1) - mean) @ weights + target_mean
    return (scores.argmax(dim=2) == test_labels).float().mean(dim=1)
