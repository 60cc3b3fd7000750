"""The PyTorch reference for `npm run bench`'s "features" figure: MobileNet V1 (width 0.75,
224x224, up to its global average pool) on one CPU thread, images per second.

The architecture of Keras' MobileNet V1, written out (torchvision has no V1); the weights are
random, which does not change the speed. Batch norm is folded into the convolutions, as
PyTorch's own inference fusion would do. Run with Debian's /usr/bin/python3 (python3-torch).

usage: /usr/bin/python3 scripts/bench_torch_mobilenet.py --width 0.75 --batch 32 --warmup 1 --repeats 3
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn

# (output channels at width 1.0, stride) of the 13 depthwise-separable blocks.
BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]


def mobilenet_v1(width: float) -> nn.Module:
    channels = int(32 * width)
    layers = [nn.Conv2d(3, channels, 3, 2, 1), nn.ReLU6()]
    for out, stride in BLOCKS:
        out = int(out * width)
        layers += [nn.Conv2d(channels, channels, 3, stride, 1, groups=channels), nn.ReLU6(), nn.Conv2d(channels, out, 1), nn.ReLU6()]
        channels = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers).eval()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=float, required=True)
    for flag in ("batch", "warmup", "repeats"):
        parser.add_argument(f"--{flag}", type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = mobilenet_v1(args.width)
    images = torch.randn(args.batch, 3, 224, 224)
    times = []
    with torch.inference_mode():
        for i in range(args.warmup + args.repeats):
            start = time.perf_counter()
            model(images)
            if i >= args.warmup:
                times.append(time.perf_counter() - start)
    print(json.dumps({"torch": torch.__version__, "images_per_second": args.batch / statistics.median(times)}))


if __name__ == "__main__":
    main()
