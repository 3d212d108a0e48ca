"""Chapter 1's MNIST-row classifier: the recipe search on validation, and the test score.

    python benchmarks/mnist_rnn.py [--seeds 0 1 2] [--epochs 50] [--shift 2] [--dropout 0]
    python benchmarks/mnist_rnn.py --validation-only --shift 1     # one candidate recipe

For each seed, as Chapter 1 does: the from-scratch RNN and nn.RNN (128 units, orthogonal
W_hh, standardised inputs; optional dropout before the head) start from the same weights
and train on the training split (digits shifted by up to --shift pixels afresh every
epoch; RMSProp with a one-cycle rate, batch 64, gradients clipped to norm 1); their
validation accuracy is what recipes are compared on (--validation-only stops here).
Then nn.RNN is trained once more, from fresh weights, on training + validation digits
and evaluated on the test split, once. Targets: nn.RNN >= 95.5% mean test accuracy over
three seeds (embedded sample); scratch time <= 3x nn.RNN time.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch import nn

from book_utils import data, models, session, training


def make_model(kind: str, args: argparse.Namespace) -> nn.Module:
    model = models.make_classifier(kind, hidden_size=128)
    recurrent = model.recurrent
    nn.init.orthogonal_(recurrent.cell.W_hh if kind == "scratch_rnn" else recurrent.weight_hh_l0)
    if args.dropout > 0:
        model.head = nn.Sequential(nn.Dropout(args.dropout), model.head)
    return model


def train(model: nn.Module, split: data.MNIST, seed: int, args: argparse.Namespace) -> dict:
    session.seed_everything(seed)  # the same dropout masks for every model of this seed
    loader = data.mnist_loader(split, "train", batch_size=args.batch_size, seed=seed)
    loader = data.RandomShifts(loader, max_shift=args.shift, seed=seed)
    optimizer, scheduler = training.make_optimizer(
        model, lr=args.lr, total_steps=args.epochs * len(loader), optimizer="rmsprop",
        schedule=args.schedule)
    val_loader = data.mnist_loader(split, "validation") if split.y_val is not None else None
    return training.fit(model, loader, epochs=args.epochs, optimizer=optimizer, scheduler=scheduler,
                        val_loader=val_loader, clip_norm=1.0, verbose=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--shift", type=int, default=2, help="largest shift of a digit, in pixels")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout before the head")
    parser.add_argument("--schedule", choices=("cosine", "onecycle"), default="onecycle")
    parser.add_argument("--validation-only", action="store_true",
                        help="compare a recipe on validation; skip the final fit and the test split")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, as in the chapters (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    mnist = data.load_mnist(validation_fraction=0.125, device="cpu")
    inputs = data.standardize(mnist)
    test_loader = data.mnist_loader(inputs, "test", batch_size=500)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; RMSProp lr {args.lr}, "
          f"{args.schedule} schedule, batch {args.batch_size}, {args.epochs} epochs, "
          f"shifts <= {args.shift} px, dropout {args.dropout}\n")
    print(f"{'seed':>4} {'model':<12} {'fitted on':<18} {'seconds':>8} {'s/epoch':>8} "
          f"{'validation':>10} {'test':>7}")
    rows = []

    def report(seed: int, name: str, fitted_on: str, history: dict, val, test) -> None:
        seconds = sum(history["seconds"])
        rows.append({"seed": seed, "model": name, "seconds": seconds, "val": val, "test": test})
        cells = [f"{v:10.2%}" if v is not None else f"{'-':>10}" for v in (val, test)]
        print(f"{seed:>4} {name:<12} {fitted_on:<18} {seconds:8.1f} {seconds / args.epochs:8.2f} "
              f"{cells[0]} {cells[1][3:]}", flush=True)

    for seed in args.seeds:
        session.seed_everything(seed)
        scratch = make_model("scratch_rnn", args)
        reference = make_model("rnn", args)
        scratch.recurrent.cell.copy_to(reference.recurrent)
        reference.head.load_state_dict(scratch.head.state_dict())
        for name, model in (("scratch RNN", scratch), ("nn.RNN", reference)):
            history = train(model, inputs, seed, args)
            report(seed, name, "train", history, history["val_accuracy"][-1], None)
        if not args.validation_only:
            session.seed_everything(seed)
            final = make_model("rnn", args)
            history = train(final, inputs.for_final_training(), seed, args)
            test = training.evaluate(final, test_loader)["accuracy"]  # the one look at test
            report(seed, "nn.RNN final", "train+validation", history, None, test)

    print(f"\n{'model':<13} {'split':<11} {'mean':>7} {'worst':>7} {'mean s':>7}")
    for name, split in (("scratch RNN", "val"), ("nn.RNN", "val"), ("nn.RNN final", "test")):
        picked = [r for r in rows if r["model"] == name]
        if not picked:
            continue
        scores = [r[split] for r in picked]
        print(f"{name:<13} {'validation' if split == 'val' else 'test':<11} "
              f"{statistics.mean(scores):7.2%} {min(scores):7.2%} "
              f"{statistics.mean(r['seconds'] for r in picked):7.1f}")
    seconds = {name: sum(r["seconds"] for r in rows if r["model"] == name)
               for name in ("scratch RNN", "nn.RNN")}
    print(f"\nscratch / nn.RNN training time: {seconds['scratch RNN'] / seconds['nn.RNN']:.2f}x "
          "(target <= 3x)")
    if not args.validation_only:
        print("target: nn.RNN final >= 95.50% mean test accuracy")
    print(f"data: {mnist.describe()}")


if __name__ == "__main__":
    main()
