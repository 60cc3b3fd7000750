"""The PyTorch reference for `npm run bench`: the same decoder training step, on one CPU thread.

Run by scripts/bench/train-step.ts with Debian's /usr/bin/python3 (python3-torch). Builds what
the TypeScript decoder computes -- word embedding, nn.LSTM, one Linear to the vocabulary over all
steps, masked cross-entropy, global-norm gradient clipping, Adam -- with the image embedding
given as a tensor, and prints one JSON object: the median wall and CPU milliseconds per step.

usage: /usr/bin/python3 scripts/bench_torch.py --batch 32 --length 13 --vocab 8900
           --embed 512 --hidden 512 --warmup 2 --repeats 5
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("batch", "length", "vocab", "embed", "hidden", "warmup", "repeats"):
        parser.add_argument(f"--{flag}", type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    batch, length = args.batch, args.length

    embedding = nn.Embedding(args.vocab, args.embed)
    lstm = nn.LSTM(args.embed, args.hidden, batch_first=True)
    output = nn.Linear(args.hidden, args.vocab)
    params = [*embedding.parameters(), *lstm.parameters(), *output.parameters()]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    loss_fn = nn.CrossEntropyLoss(reduction="none")

    images = torch.randn(batch, args.embed)  # the given image embedding
    tokens = torch.randint(3, args.vocab, (batch, length))
    mask = torch.ones(batch, length)

    def step() -> None:
        optimizer.zero_grad()
        # [image, emb(<start>), emb(w1) ... emb(wn)]: `length` steps from the zero state.
        inputs = torch.cat([images[:, None, :], embedding(tokens[:, :-1])], dim=1)  # [batch, length, embed]
        hidden, _ = lstm(inputs)  # [batch, length, hidden]
        logits = output(hidden[:, 1:].reshape(-1, args.hidden))  # [batch*(length-1), vocab]
        weights = mask[:, 1:].reshape(-1)
        loss = (loss_fn(logits, tokens[:, 1:].reshape(-1)) * weights).sum() / weights.sum()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        loss.item()

    for _ in range(args.warmup):
        step()
    wall, cpu = [], []
    for _ in range(args.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    print(json.dumps({"torch": torch.__version__, "ms": statistics.median(wall), "cpu_ms": statistics.median(cpu)}))


if __name__ == "__main__":
    main()
