"""Tolerances shared by the parity tests.

PARITY_TOLERANCE compares the served probabilities (ONNX Runtime's or PyTorch's) with torchvision's pipeline
in PyTorch, on photos. Both sides pick their kernels by the CPU's vector extensions at run time (ONNX
Runtime's MLAS: AVX2/FMA, AVX-512, VNNI; PyTorch's ATen by ATEN_CPU_CAPABILITY and oneDNN by
ONEDNN_MAX_CPU_ISA), so the two sum in different orders on different CPUs: the bound must hold on AVX2-only
and on AVX-512 machines alike. It did on both, and with PyTorch forced onto its plainest kernels
(docs/testing.md, issue 22); the product's own fp32 promise is the same 1e-4 (DESIGN.md).
"""

PARITY_TOLERANCE = 1e-4
