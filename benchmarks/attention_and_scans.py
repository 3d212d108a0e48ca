"""Chapter 7's headline measurements, with the chapter's settings.

    python benchmarks/attention_and_scans.py                 # seeds 0 1 2
    python benchmarks/attention_and_scans.py --seeds 0 --skip-reversal

Prints three tables:

1. exact match of the digit reverser with and without attention, on held-out
   strings of the trained lengths 3-8 and of the unseen lengths 9-12, for each
   seed (target: attention ahead by at least 20 points on 9-12);
2. the largest relative error of the log-space scan against a float64 loop, in
   float64, in float32, and in float32 in blocks of 64 steps (target: <= 1e-5);
3. the time of one forward and backward pass of a minGRU layer as a loop and
   as a scan, and of nn.GRU, for T in {64, 256, 1024, 4096}, in two sizes, on
   the CPU (and on the GPU when there is one), with the crossover lengths.
"""

from __future__ import annotations

import argparse

import pandas as pd
import torch

from book_utils import attention_and_scans as A
from book_utils import data, models, session

STEPS, HIDDEN = 1000, 64
LENGTHS = [64, 256, 1024, 4096]
SIZES = {"1 x 16": dict(batch_size=1, input_size=16, hidden_size=16),
         "16 x 64": dict(batch_size=16, input_size=32, hidden_size=64)}
GAIN_TARGET = 0.20


def reversal_rows(seed: int, device: torch.device) -> list[dict]:
    vocab = data.Vocabulary("0123456789")
    train_s, train_t = data.reversal_pairs(20000, 3, 8, seed=0)
    seen_s, seen_t = data.reversal_pairs(1000, 3, 8, seed=1, exclude=train_s)
    long_s, long_t = data.reversal_pairs(1000, 9, 12, seed=2)
    rows = []
    for name, make in (("no attention", models.EncoderDecoder),
                       ("attention", A.AttentionEncoderDecoder)):
        session.seed_everything(seed)
        model = make(len(vocab), embedding_size=32, hidden_size=HIDDEN).to(device)
        history = models.train_encoder_decoder(model, vocab, train_s, train_t, steps=STEPS,
                                               lr=0.01, batch_size=64, seed=seed)
        seen, _ = models.decode_and_score(model, vocab, seen_s, seen_t)
        unseen, _ = models.decode_and_score(model, vocab, long_s, long_t)
        rows.append({"seed": seed, "model": name, "3-8 (seen)": seen, "9-12 (unseen)": unseen,
                     "parameters": models.count_parameters(model),
                     "seconds": history["seconds"][0]})
    return rows


def scan_error_rows() -> list[dict]:
    rows = []
    for T in LENGTHS:
        g = torch.Generator().manual_seed(T)
        a = 0.01 + 0.98 * torch.rand(4, T, 16, generator=g, dtype=torch.float64)
        b = torch.randn(4, T, 16, generator=g, dtype=torch.float64)
        reference = A.linear_recurrence_loop(a, b)
        error = lambda h: A.max_relative_error(h.double(), reference)  # noqa: E731
        rows.append({"T": T, "float64 scan": error(A.parallel_scan(a, b)),
                     "float32 scan": error(A.parallel_scan(a.float(), b.float())),
                     "float32 scan, chunk=64": error(A.parallel_scan(a.float(), b.float(), chunk=64)),
                     "naive float32 scan finite": bool(torch.isfinite(
                         A.naive_scan(a.float(), b.float())).all())})
    return rows


def timing_rows(device: torch.device) -> tuple[list[dict], list[dict]]:
    rows, crossings = [], []
    for size, settings in SIZES.items():
        timed = A.time_recurrences(LENGTHS, repeats=3, device=device, **settings)
        rows += [{"device": device.type, "batch x hidden": size, "T": r["T"],
                  **{k: f"{1000 * r[k]:.2f} ms" for k in ("loop", "scan", "nn.GRU")}}
                 for r in timed]
        crossings.append({"device": device.type, "batch x hidden": size,
                          "scan beats loop from T": A.crossover(timed, "scan", "loop") or "never",
                          "scan beats nn.GRU from T": A.crossover(timed, "scan", "nn.GRU") or "never"})
    return rows, crossings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-reversal", action="store_true", help="only the scan tables")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pd.set_option("display.width", 160)
    device = session.pick_device()

    if not args.skip_reversal:
        rows = [row for seed in args.seeds for row in reversal_rows(seed, device)]
        table = pd.DataFrame(rows)
        print("Reversal, exact match (trained on lengths 3-8, same budget)\n")
        print(table.round(3).to_string(index=False))
        means = table.groupby("model")[["3-8 (seen)", "9-12 (unseen)"]].mean()
        gain = means.loc["attention", "9-12 (unseen)"] - means.loc["no attention", "9-12 (unseen)"]
        print(f"\nmean over seeds:\n{means.round(3)}\nattention gain on 9-12: {100 * gain:.1f} "
              f"points (target >= {100 * GAIN_TARGET:.0f}): {'met' if gain >= GAIN_TARGET else 'NOT met'}\n")

    errors = pd.DataFrame(scan_error_rows()).set_index("T")
    print("Log-space scan against a float64 loop, largest relative error\n")
    print(errors.to_string(float_format=lambda e: f"{e:.1e}"), "\n")

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for d in devices:
        rows, crossings = timing_rows(d)
        print(f"One forward + backward pass, best of 3 ({d.type}, {args.threads} CPU thread(s))\n")
        print(pd.DataFrame(rows).to_string(index=False), "\n")
        print(pd.DataFrame(crossings).to_string(index=False), "\n")


if __name__ == "__main__":
    main()
