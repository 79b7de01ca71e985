"""The Celery + Redis peer: a no-op task and the FastAPI app that fronts it.

This module runs inside the peer's own venv (``.puras/bench/peers-venv``), never in the
workspace's: it imports nothing from Puras. ``bench/puras_bench/peer.py`` starts

* ``celery -A celery_peer worker --pool=prefork --concurrency=2 --without-gossip
  --without-mingle --without-heartbeat`` and
* ``uvicorn --factory celery_peer:make_api`` (one process),

both with ``PURAS_BENCH_REDIS_URL`` pointing at a redis-server of its own. The
configuration is the one of the reference peer benchmark (``celery_bench.py``): JSON
serializers, Redis as broker and result backend, Celery defaults otherwise.

No ``from __future__ import annotations`` here: FastAPI must see the ``RunIn`` class
itself in ``run``'s signature (it is local to ``make_api``, so a string annotation
would not resolve and the body would be taken for a query parameter).
"""

import os

from celery import Celery

REDIS_URL = os.environ.get("PURAS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("celery_peer", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)


@app.task(name="noop")
def noop(x):  # type: ignore[no-untyped-def]
    return x


def make_api():  # type: ignore[no-untyped-def]
    """``uvicorn --factory celery_peer:make_api``."""
    from fastapi import FastAPI
    from pydantic import BaseModel

    class RunIn(BaseModel):
        x: int

    api = FastAPI()

    @api.post("/run")
    def run(body: RunIn):  # type: ignore[no-untyped-def]
        # A sync endpoint runs in the threadpool, so the blocking .get() is what a
        # FastAPI user would write.
        return {"result": noop.apply_async((body.x,)).get(timeout=10)}

    @api.post("/echo")
    def echo(body: RunIn):  # type: ignore[no-untyped-def]
        return {"result": body.x}

    @api.get("/health")
    def health():  # type: ignore[no-untyped-def]
        return {"ok": True}

    return api
