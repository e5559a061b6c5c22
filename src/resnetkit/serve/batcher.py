"""Dynamic batching, as TorchServe, Triton and Ray Serve do it: images of concurrent requests are
gathered until ``max_batch`` images or ``max_wait`` seconds since the first, then run as one
batch on a single model thread, off the event loop (the engines run one batch on every core)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import torch

T = TypeVar("T")


@dataclass
class _Item:
    image: torch.Tensor
    future: asyncio.Future[torch.Tensor]


class Batcher:
    def __init__(
        self,
        run: Callable[[torch.Tensor], torch.Tensor],
        max_batch: int,
        max_wait_s: float,
        on_batch: Callable[[int], None] = lambda size: None,
    ):
        self.run, self.max_batch, self.max_wait_s, self.on_batch = run, max_batch, max_wait_s, on_batch
        self.queue: asyncio.Queue[_Item] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="resnetkit-model")
        self._task: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        """Images waiting for a batch."""
        return self.queue.qsize()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Finish what is queued, then stop (graceful shutdown)."""
        await self.queue.join()
        if self._task is not None:
            self._task.cancel()
        self.executor.shutdown(wait=True)

    async def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """The model's logits for ``images`` (N, C, H, W), batched with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        items = [_Item(image, loop.create_future()) for image in images]
        for item in items:
            self.queue.put_nowait(item)
        return torch.stack(await asyncio.gather(*(item.future for item in items)))

    async def call_in_model_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the model thread (Grad-CAM), between batches."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                if not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            self.on_batch(len(batch))
            try:
                logits = await loop.run_in_executor(self.executor, self.run, torch.stack([i.image for i in batch]))
            except Exception as e:  # the requests answer 500; the batcher lives on
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(e)
            else:
                for item, row in zip(batch, logits, strict=True):
                    if not item.future.done():  # a client that left cancelled its future
                        item.future.set_result(row)
            finally:
                for _ in batch:
                    self.queue.task_done()
