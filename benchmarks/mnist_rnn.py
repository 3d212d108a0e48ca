"""Chapter 1's MNIST-row classifier: accuracy, training time, scratch vs nn.RNN.

    python benchmarks/mnist_rnn.py [--seeds 0 1 2] [--epochs 30] [--batch-size 64] [--schedule onecycle]

Trains the from-scratch RNN and nn.RNN (128 units, RMSProp 1e-3 with a one-cycle
schedule, batch 64, 30 epochs, orthogonal W_hh, standardised inputs: Chapter 1's
recipe; see --help to change it) from the same initial
weights on the same data, for several seeds. Targets: nn.RNN >= 94% on the
held-out split of the embedded sample; scratch time <= 3x nn.RNN time.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch import nn

from book_utils import data, models, session, training


def train(model: nn.Module, inputs: data.MNIST, args: argparse.Namespace) -> tuple[float, float]:
    train_loader, test_loader = data.mnist_loaders(inputs, batch_size=args.batch_size, seed=0)
    history = training.train_classifier(model, train_loader, epochs=args.epochs, lr=args.lr,
                                        optimizer="rmsprop", schedule=args.schedule, verbose=False)
    return sum(history["seconds"]), training.evaluate(model, test_loader)["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--schedule", choices=("cosine", "onecycle"), default="onecycle")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, as in the chapters (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    mnist = data.load_mnist()
    inputs = data.standardize(mnist)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; RMSProp lr {args.lr}, "
          f"{args.schedule} schedule, batch {args.batch_size}, {args.epochs} epochs\n")
    print(f"{'seed':>4} {'model':<12} {'seconds':>8} {'s/epoch':>8} {'accuracy':>9}")
    rows = []
    for seed in args.seeds:
        session.seed_everything(seed)
        scratch = models.make_classifier("scratch_rnn", hidden_size=128)
        nn.init.orthogonal_(scratch.recurrent.cell.W_hh)
        reference = models.make_classifier("rnn", hidden_size=128)
        scratch.recurrent.cell.copy_to(reference.recurrent)
        reference.head.load_state_dict(scratch.head.state_dict())
        for name, model in (("scratch RNN", scratch), ("nn.RNN", reference)):
            seconds, accuracy = train(model, inputs, args)
            rows.append((seed, name, seconds, accuracy))
            print(f"{seed:>4} {name:<12} {seconds:8.1f} {seconds / args.epochs:8.2f} {accuracy:9.2%}", flush=True)

    print(f"\n{'model':<12} {'mean acc':>9} {'min acc':>8} {'mean s':>7}")
    for name in ("scratch RNN", "nn.RNN"):
        accs = [r[3] for r in rows if r[1] == name]
        secs = [r[2] for r in rows if r[1] == name]
        print(f"{name:<12} {statistics.mean(accs):9.2%} {min(accs):8.2%} {statistics.mean(secs):7.1f}")
    ratio = sum(r[2] for r in rows if r[1] == "scratch RNN") / sum(r[2] for r in rows if r[1] == "nn.RNN")
    print(f"\nscratch / nn.RNN training time: {ratio:.2f}x (target <= 3x)")
    print(f"data: {mnist.describe()}")


if __name__ == "__main__":
    main()
