"""Why the memory guard underestimates the deep nets on CPU, and the checkpointed peak stays high:
glibc's dynamic mmap threshold. A freed mmapped chunk raises the threshold to its size, so later
activation-sized tensors come from heap arenas, whose freed memory stays resident (and the
backward thread allocates from another arena than the forward's). The resident peak then grows
faster than the live tensors, and not linearly in the batch, so the guard's two small probes
miss it. Fixing the threshold (``mallopt(M_MMAP_THRESHOLD, 128 KiB)``) returns each freed tensor.

    python benchmarks/malloc_threshold.py resnet110 128 CKPT MALLOPT   (CKPT, MALLOPT: 0 or 1)

Prints the peak RSS above the process baseline of steps on 1/8, 1/4 and all of the batch (MB,
seconds) and the guard's straight-line extension of the first two to the batch. Nothing asserted.
"""

import ctypes
import sys
import time

import torch

from resnetkit.models import create_model
from resnetkit.runtime.memory import current_rss, peak_memory, reset_peak

M_MMAP_THRESHOLD = -3  # glibc malloc.h

name, batch, ck, mall = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4] == "1"
if mall:
    ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 1 << 17)  # a fixed threshold: no dynamic raise
cpu = torch.device("cpu")
torch.manual_seed(0)
m = create_model(name, num_classes=10, in_chans=3).to(memory_format=torch.channels_last).train()
m.set_grad_checkpointing(ck)
opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (batch,))
base = current_rss()
out = {}
for n in (batch // 8, batch // 4, batch):
    reset_peak(cpu)
    t = time.perf_counter()
    torch.nn.functional.cross_entropy(m(x[:n]), y[:n]).backward()
    if n == batch:
        opt.step()
    opt.zero_grad(set_to_none=True)
    out[n] = ((peak_memory(cpu) - base) >> 20, round(time.perf_counter() - t, 1))
n1, n2 = batch // 8, batch // 4
est = out[n2][0] + (out[n2][0] - out[n1][0]) / (n2 - n1) * (batch - n2)
mode = ("ckpt" if ck else "plain", "mallopt" if mall else "default")
print(name, batch, *mode, "base", base >> 20, out, "est", int(est))
