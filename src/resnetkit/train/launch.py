"""``resnetkit train --nproc N``: torchrun's elastic agent on this machine, with the same flags."""

from __future__ import annotations

import sys


def launch_local(nproc: int, argv: list[str], max_restarts: int = 0) -> int:
    """Run ``python -m resnetkit <argv>`` in ``nproc`` processes under torchrun (``--standalone``:
    a private rendezvous on a free local port). Returns the exit code."""
    import os

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # Restarted workers that share the rendezvous store can read the previous attempt's addresses
    # and connect to dead ports (pytorch/pytorch#135712); a store of their own avoids it.
    os.environ.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    args = get_args_parser().parse_args(
        [f"--nproc-per-node={nproc}", "--standalone", f"--max-restarts={max_restarts}", "-m", "resnetkit", *argv]
    )
    try:
        run(args)
    except ChildFailedError as e:
        codes = {failure.exitcode for failure in e.failures.values()}
        # Bad input or the memory guard's refusal (exit 2): the workers said why, in one line. The
        # agent stops the rest of the group with SIGTERM (a negative exit code) as the first exits.
        if 2 in codes and all(code == 2 or code < 0 for code in codes):
            return 2
        print(f"resnetkit train: a worker failed: {e}", file=sys.stderr)
        return 1
    except SignalException as e:
        print(
            f"resnetkit train: stopped by {e.sigval.name}; the last epoch's checkpoint is kept (--resume RUN)",
            file=sys.stderr,
        )
        return 130
    return 0


def strip_flags(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """argv without ``--flag VALUE`` / ``--flag=VALUE`` for each of ``flags``."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in flags:
            skip = True
            continue
        if any(a.startswith(f + "=") for f in flags):
            continue
        out.append(a)
    return out
