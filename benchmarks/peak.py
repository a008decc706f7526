"""This machine's matmul peak: the physical limit the training and generation numbers face.

python benchmarks/peak.py [--threads N]
Prints GFLOP/s of square matmuls and of the student's own layer shapes, fp32 and bf16.
"""
import argparse
import time

import torch

# (rows, inner, cols): square, then Gemma-3-270M's MLP and LM-head shapes at 1024 tokens
SHAPES = [(2048, 2048, 2048), (1024, 640, 2048), (1024, 2048, 640), (256, 640, 262144 // 8)]


def gflops(rows: int, inner: int, cols: int, dtype: torch.dtype, seconds: float = 1.0) -> float:
    """Best GFLOP/s of a (rows x inner) @ (inner x cols) matmul over ~`seconds`."""
    a, b = torch.randn(rows, inner, dtype=dtype), torch.randn(inner, cols, dtype=dtype)
    a @ b  # warm up
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        a @ b
        best = max(best, 2 * rows * inner * cols / (time.perf_counter() - started) / 1e9)
    return best


def peak(dtype: torch.dtype) -> float:
    """The machine's peak for `dtype`: the best over the shapes above."""
    return max(gflops(*shape, dtype) for shape in SHAPES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    torch.set_num_threads(parser.parse_args().threads)
    print(f"threads {torch.get_num_threads()}; AVX512-BF16 {torch.cpu._is_avx512_bf16_supported()}, "
          f"AMX {torch.cpu._is_amx_tile_supported()}")
    best = {}
    for shape in SHAPES:
        row = {dtype: gflops(*shape, dtype) for dtype in (torch.float32, torch.bfloat16)}
        for dtype, value in row.items():
            best[dtype] = max(best.get(dtype, 0.0), value)
        print(f"{'x'.join(map(str, shape)):>20}  fp32 {row[torch.float32]:7.1f}  "
              f"bf16 {row[torch.bfloat16]:7.1f} GFLOP/s  (bf16/fp32 {row[torch.bfloat16] / row[torch.float32]:.2f}x)")
    print(f"peak fp32 {best[torch.float32]:.1f} GFLOP/s, bf16 {best[torch.bfloat16]:.1f} GFLOP/s")


if __name__ == "__main__":
    main()
