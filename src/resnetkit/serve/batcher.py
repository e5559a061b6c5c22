"""Dynamic batching, as TorchServe, Triton and Ray Serve do it: images of concurrent requests are
gathered until ``max_batch`` images or ``max_wait`` seconds since the first, then run as one
batch on a single model thread, off the event loop (the engines run one batch on every core).
The wait is only spent while other requests are still decoding their images: a request alone
runs at once. The batcher knows no task: ``collate`` makes the gathered inputs one argument of
``run`` (by default a stacked tensor), which gives one output per input, whatever an output is
(a row of logits, a mask, a detector's boxes); ``join`` makes a request's outputs its answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")


@dataclass
class _Item:
    image: torch.Tensor
    future: asyncio.Future[Any]


class Batcher:
    def __init__(
        self,
        run: Callable[[Any], Sequence[Any]],
        max_batch: int,
        max_wait_s: float,
        on_batch: Callable[[int], None] = lambda size: None,
        collate: Callable[[list[torch.Tensor]], Any] = torch.stack,
        join: Callable[[list[Any]], Any] = torch.stack,
    ):
        self.run, self.max_batch, self.max_wait_s, self.on_batch = run, max_batch, max_wait_s, on_batch
        self.collate, self.join = collate, join
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="resnetkit-model")
        self._task: asyncio.Task[None] | None = None
        self._forming: list[_Item] = []
        self._expected = 0  # requests decoding images they will submit

    @property
    def depth(self) -> int:
        """Images waiting: queued, or gathered into the batch that has not run yet."""
        return self.queue.qsize() + len(self._forming)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @contextlib.contextmanager
    def expecting(self) -> Iterator[None]:
        """Around a request's decoding: while one is under way a batch waits for its images (up to
        ``max_wait``); with none, a batch runs at once (a lone request pays no waiting)."""
        self._expected += 1
        try:
            yield
        finally:
            self._expected -= 1

    async def stop(self) -> None:
        """Finish what is queued, then stop (graceful shutdown)."""
        await self.queue.join()
        if self._task is not None:
            self._task.cancel()
        self.executor.shutdown(wait=True)

    async def __call__(self, inputs: Sequence[torch.Tensor] | torch.Tensor) -> Any:
        """The model's outputs for ``inputs`` (a batch tensor, or a list of inputs), joined, run
        with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        items = [_Item(x, loop.create_future()) for x in inputs]
        for item in items:
            self.queue.put_nowait(item)
        return self.join(list(await asyncio.gather(*(item.future for item in items))))

    async def call_in_model_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the model thread (Grad-CAM), between batches."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def _loop(self) -> None:
        while True:
            batch = await self._gather()
            try:
                await self._run(batch)
            finally:
                for _ in batch:
                    self.queue.task_done()

    async def _gather(self) -> list[_Item]:
        """The next batch: the first image waiting, and those that come within ``max_wait`` of it,
        up to ``max_batch``; images whose requests were cancelled are left out."""
        loop = asyncio.get_running_loop()
        batch: list[_Item] = []
        self._forming = batch
        deadline = None
        while len(batch) < self.max_batch:
            if self.queue.empty() and batch:
                if not self._expected:
                    break  # nobody else is coming
                assert deadline is not None
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            else:
                item = await self.queue.get()
            if item.future.cancelled():
                self.queue.task_done()
                continue
            batch.append(item)
            deadline = deadline or loop.time() + self.max_wait_s
        return batch

    async def _run(self, batch: list[_Item]) -> None:
        """One model call for ``batch``; whatever goes wrong fails its requests (a 500 each), never
        the loop that serves the ones after them."""
        self._forming = []
        try:
            self.on_batch(len(batch))
            inputs = self.collate([i.image for i in batch])
            outputs = await asyncio.get_running_loop().run_in_executor(self.executor, self.run, inputs)
            if len(outputs) != len(batch):
                raise RuntimeError(f"the model gave {len(outputs)} outputs for {len(batch)} images")
        except Exception as e:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(e)
            return
        for item, row in zip(batch, outputs, strict=True):
            if not item.future.done():  # a request cancelled meanwhile has no one to answer
                item.future.set_result(row)
