"""Each chapter's run time on this machine: median of several top-to-bottom runs.

    python -m tools.timing [--repeats 3] [chapter ...]

Runs every instructor notebook in a fresh kernel (kernel start included, as a learner's
"Restart and Run All"), on the CPU and, when CUDA is available, on the GPU too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import nbformat
import torch
from nbclient import NotebookClient

from nncourse import course


def run_once(chapter: str, device: str) -> float:
    nb = nbformat.read(course.source_notebook(chapter), as_version=4)
    os.environ["NNCOURSE_DEVICE"] = device  # the kernel inherits it
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(course.source_notebook(chapter).parent)}},
    ).execute()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", default=course.chapters())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"{os.cpu_count()} CPU cores; torch {torch.__version__}"
        + (f"; GPU {torch.cuda.get_device_name()}" if "cuda" in devices else "; no GPU")
    )
    print(f"{'chapter':28s}" + "".join(f"{d + ' median':>14s}{'min':>8s}{'max':>8s}" for d in devices))
    for chapter in args.chapters:
        row = f"{chapter:28s}"
        for device in devices:
            times = [run_once(chapter, device) for _ in range(args.repeats)]
            row += f"{statistics.median(times):13.1f}s{min(times):7.1f}s{max(times):7.1f}s"
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
