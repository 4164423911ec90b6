"""Patroni's REST API, as a client sees it: ``GET /primary`` (200 on the leader), ``/replica``,
``/health``, ``/cluster``, and ``POST /switchover`` (with the API's generated password)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from pytest_pgdr.cluster.credentials import Secret

TIMEOUT = 2.0  # seconds per request: a frozen node must not hold a poll loop


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer at all (refused, timed out)
    body: Any = None


@dataclass(frozen=True)
class RestApi:
    """One node's REST API at ``url`` (``http://127.0.0.1:8008``)."""

    url: str
    user: str = ""
    password: Secret = field(default=Secret(""), repr=False)

    def get(self, path: str, timeout: float = TIMEOUT) -> Answer:
        return self._send(urllib.request.Request(self.url + path), timeout)

    def post(self, path: str, body: dict[str, Any], timeout: float = 30.0) -> Answer:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **self._auth()},
            method="POST",
        )
        return self._send(request, timeout)

    def _auth(self) -> dict[str, str]:
        if not self.user:
            return {}
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _send(self, request: urllib.request.Request, timeout: float) -> Answer:
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return Answer(resp.status, _body(resp.read()))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, _body(exc.read()))
        except (OSError, ValueError):
            return Answer(0)

    def role(self) -> str:
        """``leader``/``primary``, ``replica``, or '' when the node does not answer."""
        answer = self.get("/patroni")
        return str(answer.body.get("role", "")) if isinstance(answer.body, dict) else ""


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
