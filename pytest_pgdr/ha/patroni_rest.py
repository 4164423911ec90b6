"""Patroni's REST API, as a client sees it: ``GET /primary`` (200 on the leader), ``/replica``,
``/health``, ``/cluster``, and ``POST /switchover`` (with the API's generated password).

On a host whose servers sit on a network of their own (containers), the API is reached from
inside it: the request runs as a small Python program through ``host.run`` (the request,
password included, travels on its standard input, never in its arguments).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_pgdr.cluster.credentials import Secret

if TYPE_CHECKING:
    from pytest_pgdr.hosts.base import Host

TIMEOUT = 2.0  # seconds per request: a frozen node must not hold a poll loop
INSIDE = """
import json, sys, urllib.error, urllib.request
r = json.load(sys.stdin)
body = r["body"].encode() if r["body"] is not None else None
req = urllib.request.Request(r["url"], data=body, headers=r["headers"], method=r["method"])
try:
    with urllib.request.urlopen(req, timeout=r["timeout"]) as resp:
        print(resp.status); sys.stdout.write(resp.read().decode())
except urllib.error.HTTPError as exc:
    print(exc.code); sys.stdout.write(exc.read().decode())
except Exception:
    print(0)
"""


def networked(host: Host) -> bool:
    """Whether ``host``'s servers reach each other by name on a network of their own
    (containers) rather than on this machine's loopback."""
    return host.peer_address("pgdr_probe") != host.client_address


def http(
    url: str,
    via: Host | None = None,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> Answer:
    """One HTTP request from here, or from inside ``via``'s network."""
    if via is not None:
        request = {"url": url, "method": method, "body": body, "headers": headers or {}}
        spec = json.dumps({**request, "timeout": timeout})
        try:
            proc = via.run(["python3", "-c", INSIDE], input=spec, timeout=timeout + 10)
        except Exception:
            return Answer(0)
        status, _, text = proc.stdout.partition("\n")
        return Answer(int(status) if status.strip().isdigit() else 0, _body(text.encode()))
    data = body.encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Answer(resp.status, _body(resp.read()))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, _body(exc.read()))
    except (OSError, ValueError):
        return Answer(0)


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
    via: Host | None = field(default=None, repr=False, compare=False)  # reached from inside

    def get(self, path: str, timeout: float = TIMEOUT) -> Answer:
        return http(self.url + path, self.via, timeout=timeout)

    def post(self, path: str, body: dict[str, Any], timeout: float = 30.0) -> Answer:
        headers = {"Content-Type": "application/json", **self._auth()}
        return http(self.url + path, self.via, "POST", json.dumps(body), headers, timeout)

    def _auth(self) -> dict[str, str]:
        if not self.user:
            return {}
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def role(self) -> str:
        """``leader``/``primary``, ``replica``, or '' when the node does not answer."""
        answer = self.get("/patroni")
        return str(answer.body.get("role", "")) if isinstance(answer.body, dict) else ""


def _body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
