"""HubSpot and Salesforce REST APIs as local HTTP servers, for write-back tests.

Only the calls doorstep makes are served, and every answer has the shape the real API gives
(bodies as their documentation and real responses show them: HubSpot's
`{"status": "error", "message": ..., "category": ...}`, Salesforce's
`[{"message": ..., "errorCode": ...}]`, 201 with the new id, Salesforce's 204 on PATCH).
`script` holds answers to give instead, in turn: (status, headers, body) for the next requests
whose path starts with the given prefix; `expire()` makes the current access token expired.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

Answer = tuple[int, dict[str, str], Any]


@dataclass
class CrmServer:
    """State and scripted answers shared by both fakes."""

    token: str = "token-1"
    expired: set[str] = field(default_factory=set)
    script: list[tuple[str, Answer]] = field(default_factory=list)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)  # method, path, body
    refreshed: int = 0

    def expire(self) -> None:
        self.expired.add(self.token)

    def scripted(self, path: str) -> Answer | None:
        for i, (prefix, answer) in enumerate(self.script):
            if path.startswith(prefix):
                del self.script[i]
                return answer
        return None

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: Any) -> Answer:
        raise NotImplementedError


class HubSpot(CrmServer):
    """HubSpot CRM v3: owners, tasks (create, search) and companies (update)."""

    def __init__(self, companies: list[str], owners: dict[str, str]) -> None:
        super().__init__()
        self.companies: dict[str, dict[str, str]] = {c: {"name": c} for c in companies}
        self.owners = owners
        self.tasks: dict[str, dict[str, Any]] = {}
        self.properties = {"doorstep_eql_status"}

    def _error(self, status: int, message: str, category: str) -> Answer:
        return status, {}, {"status": "error", "message": message,
                            "correlationId": str(uuid.uuid4()), "category": category}

    def _object(self, object_id: str, properties: dict[str, Any]) -> dict[str, Any]:
        return {"id": object_id, "properties": properties, "createdAt": "2026-12-08T09:00:00Z",
                "updatedAt": "2026-12-08T09:00:00Z", "archived": False}

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: Any) -> Answer:
        if path == "/oauth/v1/token":
            self.refreshed += 1
            self.token = f"token-{self.refreshed + 1}"
            return 200, {}, {"token_type": "bearer", "refresh_token": "refresh-1",
                             "access_token": self.token, "expires_in": 1800}
        bearer = headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer in self.expired:
            return self._error(401, "The OAuth token used to make this call expired 3 "
                               "minute(s) ago.", "EXPIRED_AUTHENTICATION")
        if bearer != self.token:
            return self._error(401, "Authentication credentials not found.",
                               "INVALID_AUTHENTICATION")
        if method == "GET" and path.rstrip("/") == "/crm/v3/owners":
            email = query.get("email", [""])[0]
            found = [{"id": self.owners[email], "email": email, "firstName": "", "lastName": "",
                      "userId": 9586504, "createdAt": "2026-01-01T00:00:00Z",
                      "updatedAt": "2026-01-01T00:00:00Z", "archived": False}] \
                if email in self.owners else []
            return 200, {}, {"results": found}
        if method == "POST" and path == "/crm/v3/objects/tasks/search":
            token = body["filterGroups"][0]["filters"][0]["value"].strip("*")
            found = [self._object(i, {"hs_task_subject": t["properties"]["hs_task_subject"]})
                     for i, t in self.tasks.items()
                     if token in t["properties"]["hs_task_subject"]]
            return 200, {}, {"total": len(found), "results": found[:1]}
        if method == "POST" and path == "/crm/v3/objects/tasks":
            for association in body.get("associations", []):
                if association["to"]["id"] not in self.companies:
                    return self._error(400, "One or more associations are invalid",
                                       "VALIDATION_ERROR")
            task_id = str(40000 + len(self.tasks))
            self.tasks[task_id] = body
            return 201, {}, self._object(task_id, body["properties"])
        match = re.fullmatch(r"/crm/v3/objects/companies/([^/]+)", path)
        if method == "PATCH" and match:
            company = match.group(1)
            if company not in self.companies:
                return self._error(404, "resource not found", "OBJECT_NOT_FOUND")
            unknown = [p for p in body["properties"] if p not in self.properties]
            if unknown:
                return self._error(400, f'Property values were not valid: [{{"isValid":false,'
                                   f'"message":"Property \\"{unknown[0]}\\" does not exist",'
                                   f'"error":"PROPERTY_DOESNT_EXIST","name":"{unknown[0]}"}}]',
                                   "VALIDATION_ERROR")
            self.companies[company].update(body["properties"])
            return 200, {}, self._object(company, self.companies[company])
        return self._error(404, "resource not found", "OBJECT_NOT_FOUND")


class Salesforce(CrmServer):
    """Salesforce REST API: SOQL queries (User, Task), Task create, Account update."""

    def __init__(self, accounts: list[str], users: dict[str, str]) -> None:
        super().__init__()
        self.accounts: dict[str, dict[str, Any]] = {a: {"Name": a} for a in accounts}
        self.users = users
        self.tasks: dict[str, dict[str, Any]] = {}
        self.fields = {"Doorstep_EQL_Status__c"}

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any,
               body: Any) -> Answer:
        if path == "/services/oauth2/token":
            self.refreshed += 1
            self.token = f"token-{self.refreshed + 1}"
            return 200, {}, {"access_token": self.token, "signature": "c2ln",
                             "scope": "refresh_token api", "instance_url": "http://local",
                             "id": "https://login.salesforce.com/id/00D/005", "token_type":
                             "Bearer", "issued_at": "1765184400000"}
        bearer = headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer != self.token or bearer in self.expired:
            return 401, {}, [{"message": "Session expired or invalid",
                              "errorCode": "INVALID_SESSION_ID"}]
        api = "/services/data/v60.0"
        if method == "GET" and path == f"{api}/query":
            soql = query["q"][0]
            if "FROM User" in soql:
                email = re.search(r"Email = '([^']*)'", soql).group(1)  # type: ignore[union-attr]
                records = [{"attributes": {"type": "User", "url": f"{api}/sobjects/User/"
                                           f"{self.users[email]}"}, "Id": self.users[email]}] \
                    if email in self.users else []
            else:
                what = re.search(r"WhatId = '([^']*)'", soql).group(1)  # type: ignore[union-attr]
                tag = re.search(r"LIKE '%([^%']*)%'", soql).group(1)  # type: ignore[union-attr]
                records = [{"attributes": {"type": "Task", "url": f"{api}/sobjects/Task/{i}"},
                            "Id": i} for i, t in self.tasks.items()
                           if t["WhatId"] == what and tag in t["Subject"]]
            return 200, {}, {"totalSize": len(records), "done": True, "records": records}
        if method == "POST" and path == f"{api}/sobjects/Task":
            if body.get("WhatId") not in self.accounts:
                return 400, {}, [{"message": "Related To ID: id value of incorrect type: "
                                  f"{body.get('WhatId')}", "errorCode":
                                  "FIELD_INTEGRITY_EXCEPTION", "fields": ["WhatId"]}]
            task_id = f"00T5e0000{len(self.tasks):06d}"
            self.tasks[task_id] = body
            return 201, {}, {"id": task_id, "success": True, "errors": []}
        match = re.fullmatch(rf"{api}/sobjects/Account/([^/]+)", path)
        if method == "PATCH" and match:
            account = match.group(1)
            if account not in self.accounts:
                return 404, {}, [{"errorCode": "NOT_FOUND",
                                  "message": "The requested resource does not exist"}]
            unknown = [f for f in body if f not in self.fields]
            if unknown:
                return 400, {}, [{"message": f"No such column '{unknown[0]}' on sobject of "
                                  "type Account", "errorCode": "INVALID_FIELD"}]
            self.accounts[account].update(body)
            return 204, {}, None
        return 404, {}, [{"errorCode": "NOT_FOUND",
                          "message": "The requested resource does not exist"}]


@contextmanager
def serving(crm: CrmServer) -> Iterator[str]:
    """Serve `crm` on loopback; yield its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            url = urlparse(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            if self.headers.get("Content-Type", "").startswith("application/json") and raw:
                body: Any = json.loads(raw)
            else:
                body = parse_qs(raw.decode()) if raw else None
            crm.calls.append((self.command, url.path, body))
            answer = crm.scripted(url.path)
            status, headers, payload = answer or crm.handle(
                self.command, url.path, parse_qs(url.query), self.headers, body)
            data = b"" if payload is None else (
                payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if data:
                self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _answer  # noqa: N815

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
