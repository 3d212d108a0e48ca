"""Chapter 4 benchmarks: hand-written BPTT against autograd, and the MNIST-row RNN's accuracy.

    python benchmarks/bptt.py                      # both parts
    python benchmarks/bptt.py --part speed --repeats 50
    python benchmarks/bptt.py --part mnist         # seeds 0-4, writes book_utils/results/bptt_mnist.json

(mnist) The chapter's protocol for its nn.RNN classifier (bptt.MNIST_RECIPE), per
seed: train on the training split and score the validation split (where the
recipe was chosen), then refit on training + validation and score the test split
once. Target: mean test accuracy >= 95.5% with the embedded sample (CPU budget).
With the recipe's epochs and five or more seeds, the per-seed rows are saved with
``book_utils.results.save`` as ``bptt_mnist``; chapter 4 shows them.

(speed)
For each size, both sides compute the loss and all five gradients of a tanh-RNN
classifier for the same batch: "autograd" is nn.RNN + nn.Linear and
``loss.backward()``, "hand" is ``bptt.forward`` + ``bptt.backward``. The table
gives the median time of each in float32 on the chosen device, the ratio
hand / autograd, and the largest relative gradient error between the two
computed in float64 (it must be <= 1e-8).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from book_utils import bptt, data, models, results, session, training

SIZES = [  # (batch, steps, features, hidden)
    (32, 28, 28, 64),
    (32, 28, 28, 150),
    (128, 28, 28, 150),
    (32, 100, 28, 150),
]
N_CLASSES = 10


def autograd_gradients(model, x, y) -> dict[str, torch.Tensor]:
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    rnn, head = model.recurrent, model.head
    return {"W_xh": rnn.weight_ih_l0.grad.T, "W_hh": rnn.weight_hh_l0.grad.T,
            "b_h": rnn.bias_ih_l0.grad, "W_hy": head.weight.grad.T, "b_y": head.bias.grad}


def median_time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(B: int, T: int, F_in: int, H: int, repeats: int, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = models.make_classifier("rnn", input_size=F_in, hidden_size=H, n_classes=N_CLASSES)
    x = torch.rand(B, T, F_in)
    y = torch.randint(N_CLASSES, (B,))

    model64, x64 = model.double(), x.double()
    params64 = bptt.classifier_parameters(model64)
    hand64 = bptt.backward(bptt.forward(x64, y, params64)[1], params64)
    reference = autograd_gradients(model64, x64, y)
    error = max(bptt.relative_error(hand64[k], reference[k]) for k in bptt.PARAMETER_NAMES)

    model = model.float().to(device)
    x, y = x.to(device), y.to(device)
    params = bptt.classifier_parameters(model)
    t_autograd = median_time(lambda: autograd_gradients(model, x, y), repeats, device)
    t_hand = median_time(lambda: bptt.backward(bptt.forward(x, y, params)[1], params), repeats, device)
    return {"batch": B, "steps": T, "hidden": H, "autograd ms": 1e3 * t_autograd,
            "hand ms": 1e3 * t_hand, "hand / autograd": t_hand / t_autograd,
            "max rel. grad error (float64)": error}


MNIST_TARGET = 0.955
# What the MNIST rows depend on: when any of it changes, tests/test_results.py asks for a rerun.
MNIST_SOURCES = ["benchmarks/bptt.py", "book_utils.bptt.train_mnist_rnn",
                 "book_utils.bptt.MNIST_RECIPE", "book_utils.data.standardize",
                 "book_utils.data.RandomShifts", "book_utils.training.train_classifier"]


def mnist_table(seeds: list[int], epochs: int, device: torch.device) -> None:
    mnist = data.load_mnist(validation_fraction=0.125, device=device)
    digits = data.standardize(mnist)
    final = digits.for_final_training()
    val_loader = data.mnist_loader(digits, "validation", batch_size=256)
    test_loader = data.mnist_loader(final, "test", batch_size=256)
    print(f"recipe {bptt.MNIST_RECIPE} with {epochs} epochs")
    rows = []
    for seed in seeds:
        model, history = bptt.train_mnist_rnn(digits, epochs=epochs, seed=seed, device=device)
        val = training.evaluate(model, val_loader, device=device)["accuracy"]
        model, refit = bptt.train_mnist_rnn(final, epochs=epochs, seed=seed, device=device)
        test = training.evaluate(model, test_loader, device=device)["accuracy"]
        seconds = sum(history["seconds"]) + sum(refit["seconds"])
        rows.append({"seed": seed, "validation accuracy": val, "test accuracy": test,
                     "train + refit seconds": seconds})
        print(f"seed {seed}: validation {val:.2%} (train split only), test {test:.2%} "
              f"(refit on train + validation), {seconds:.0f} s", flush=True)
    tests = [r["test accuracy"] for r in rows]
    mean, worst = statistics.mean(tests), min(tests)
    print(f"test accuracy over {len(seeds)} seeds: mean {mean:.2%}, worst {worst:.2%}; mean validation "
          f"{statistics.mean(r['validation accuracy'] for r in rows):.2%} "
          f"({'meets' if mean >= MNIST_TARGET else 'MISSES'} the {MNIST_TARGET:.1%} target)")
    print(f"data: {mnist.describe()}")
    if epochs == bptt.MNIST_RECIPE["epochs"] and len(seeds) >= results.MIN_SEEDS:
        path = results.save("bptt_mnist", rows, sources=MNIST_SOURCES,
                            command="python benchmarks/bptt.py --part mnist",
                            notes=f"data: {mnist.describe()}; device {device}")
        print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed repetitions per size")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="default: CUDA if available, else CPU")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, as in the chapters (default 1)")
    parser.add_argument("--part", choices=("speed", "mnist", "both"), default="both")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=bptt.MNIST_RECIPE["epochs"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = session.pick_device(args.device)
    if args.part in ("mnist", "both"):
        mnist_table(args.seeds, args.epochs, device)
    if args.part == "mnist":
        return
    print(f"torch {torch.__version__} on {device}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} runs, forward + backward of loss and all five gradients")
    rows = [measure(*size, args.repeats, device) for size in SIZES]
    header = ("batch", "steps", "hidden", "autograd ms", "hand ms", "hand / autograd",
              "max rel. grad error (float64)")
    print("  ".join(f"{h:>{max(len(h), 8)}}" for h in header))
    for row in rows:
        cells = [f"{row['batch']:>8}", f"{row['steps']:>8}", f"{row['hidden']:>8}",
                 f"{row['autograd ms']:>11.2f}", f"{row['hand ms']:>8.2f}",
                 f"{row['hand / autograd']:>15.2f}", f"{row['max rel. grad error (float64)']:>29.1e}"]
        print("  ".join(cells))
    worst = max(row["max rel. grad error (float64)"] for row in rows)
    print(f"largest relative gradient error: {worst:.1e} ({'ok' if worst <= 1e-8 else 'FAIL'}: limit 1e-8)")
    if worst > 1e-8:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
