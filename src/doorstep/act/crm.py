"""Write-back to the CRM where reps work: a task for the lead's owner and an EQL status on the
company (HubSpot) or account (Salesforce), through their REST APIs.

They are channels like email: a message on channel `hubspot` or `salesforce` goes through the
outbox, with its idempotency key, retries and dead letters. Each send is safe to repeat:

1. look for the task this message made before (its subject ends with the key's reference);
2. create the task if there is none, due on the lead's deadline, owned by the CRM user with
   the owner's email when there is one;
3. set the EQL status on the company or account (a PATCH, the same on every try).

When the lead later moves on (an opportunity, won, lost, rejected, expired), a `crm_status`
message updates the status alone, once per status (`[act.crm] status_values`).

Answers: 429 waits as long as `Retry-After` says (and does not count as a failed try); 5xx and
network errors are retried with backoff; 401 refreshes an OAuth access token once when a
refresh token is configured, else fails with what to set; any other 4xx is permanent (a wrong
id or a missing property): the delivery goes to the dead letters at once, with the CRM's
message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, time
from typing import Any

import httpx

from doorstep.act.channels import HUBSPOT, SALESFORCE, USER_AGENT, DeliveryError, OutgoingMessage
from doorstep.act.outbox import CRM_STATUS
from doorstep.config import ConfigError, CrmConfig

# HubSpot-defined association type of a task to a company
_TASK_TO_COMPANY = 192
_MAX_WAIT = 3600.0


def reference(message: OutgoingMessage) -> str:
    """The tag a task's subject ends with, from the message's idempotency key."""
    return f"doorstep {message.idempotency_key[:12]}"


def _subject(message: OutgoingMessage) -> str:
    return f"{' '.join(message.subject.split())[:200]} ({reference(message)})"


def _lead(message: OutgoingMessage) -> Mapping[str, Any]:
    lead = message.data.get("lead") or {}
    return lead if isinstance(lead, Mapping) else {}


def _account_id(message: OutgoingMessage) -> str:
    account = str(_lead(message).get("account_id") or "")
    if not account:
        raise DeliveryError(f"lead {message.lead_id} has no account id to write to",
                            permanent=True)
    return account


def _owner_email(message: OutgoingMessage) -> str | None:
    owner = message.data.get("owner") or {}
    email = owner.get("email") if isinstance(owner, Mapping) else None
    return str(email) if email and "@" in str(email) else None


def _due(message: OutgoingMessage) -> datetime:
    due = _lead(message).get("due_date")
    if due:
        try:
            return datetime.combine(datetime.fromisoformat(str(due)).date(), time(12),
                                    tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), _MAX_WAIT)
    except ValueError:
        return 10.0  # HubSpot's secondly and daily limits do not always say


def _said(response: httpx.Response) -> str:
    """The CRM's own message from an error answer (both APIs answer JSON)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip()
    if isinstance(body, list) and body and isinstance(body[0], Mapping):  # Salesforce
        return "; ".join(f"{e.get('errorCode')}: {e.get('message')}" for e in body[:3])
    if isinstance(body, Mapping):  # HubSpot
        return str(body.get("message") or body.get("category") or body)[:300]
    return str(body)[:300]


class _CrmChannel:
    """Shared HTTP handling: auth, token refresh, and what each answer means."""

    name = ""
    token_env = ""
    refresh_env = ""

    def __init__(self, base_url: str, config: CrmConfig, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.config = config
        self.client = httpx.Client(timeout=timeout, headers={"User-Agent": USER_AGENT})
        self.token = os.environ.get(self.token_env, "")
        self._owners: dict[str, str | None] = {}

    # --- HTTP ---------------------------------------------------------------------------

    def _refresh(self) -> bool:
        """Get a new access token with the refresh token, if one is configured."""
        refresh = os.environ.get(self.refresh_env)
        client_id = os.environ.get(f"DOORSTEP_{self.name.upper()}_CLIENT_ID")
        secret = os.environ.get(f"DOORSTEP_{self.name.upper()}_CLIENT_SECRET")
        if not (refresh and client_id and secret):
            return False
        try:
            response = self.client.post(self.token_url(), data={
                "grant_type": "refresh_token", "refresh_token": refresh,
                "client_id": client_id, "client_secret": secret})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.name}: refreshing the access token failed: {exc}") \
                from exc
        if not response.is_success:
            raise DeliveryError(
                f"{self.name}: the refresh token was refused (HTTP {response.status_code}: "
                f"{_said(response)}); set {self.refresh_env} again", permanent=True)
        self.token = str(response.json()["access_token"])
        return True

    def token_url(self) -> str:
        raise NotImplementedError

    def find_owner(self, email: str) -> str | None:
        """The CRM user id of the user with this email, or None."""
        raise NotImplementedError

    def status(self, message: OutgoingMessage) -> str:
        """The EQL status to write: the lead's later status, or "EQL" at its assignment."""
        later = message.data.get("status_value")
        return str(later) if message.action == CRM_STATUS and later else self.config.status_value

    def owner_id(self, email: str | None) -> str | None:
        """The CRM user id for the lead owner's email (asked once per email and run)."""
        if not email:
            return None
        if email not in self._owners:
            self._owners[email] = self.find_owner(email)
        return self._owners[email]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API call; an error answer becomes a DeliveryError that says what it means."""
        if not self.token and not self._refresh():
            raise DeliveryError(f"{self.name}: no access token; set {self.token_env}",
                                permanent=True)
        for attempt in (1, 2):
            try:
                response = self.client.request(
                    method, self.base_url + path,
                    headers={"Authorization": f"Bearer {self.token}"}, **kwargs)
            except httpx.HTTPError as exc:
                raise DeliveryError(f"{self.name} {method} {path}: {exc}") from exc
            if response.status_code == 401 and attempt == 1 and self._refresh():
                continue  # an expired access token: once more with the new one
            break
        if response.is_success:
            return response
        status = response.status_code
        said = _said(response)
        if status == 429:
            raise DeliveryError(f"{self.name}: rate limited (HTTP 429: {said})",
                                retry_after=_retry_after(response))
        if status == 401:
            raise DeliveryError(
                f"{self.name}: the access token was refused (HTTP 401: {said}); set "
                f"{self.token_env}, or {self.refresh_env} with "
                f"DOORSTEP_{self.name.upper()}_CLIENT_ID and _CLIENT_SECRET to refresh it",
                permanent=True)
        if status >= 500:
            raise DeliveryError(f"{self.name} {method} {path}: HTTP {status} {said}")
        raise DeliveryError(f"{self.name} {method} {path}: HTTP {status} {said}", permanent=True)

    def close(self) -> None:
        self.client.close()


class HubSpotChannel(_CrmChannel):
    """HubSpot CRM v3: a task associated with the company, and a company property."""

    name = HUBSPOT
    token_env = "DOORSTEP_HUBSPOT_TOKEN"
    refresh_env = "DOORSTEP_HUBSPOT_REFRESH_TOKEN"

    def token_url(self) -> str:
        return f"{self.base_url}/oauth/v1/token"

    def find_owner(self, email: str) -> str | None:
        found = self.request("GET", "/crm/v3/owners/", params={"email": email}).json()
        results = found.get("results") or []
        return str(results[0]["id"]) if results else None

    def existing_task(self, message: OutgoingMessage) -> str | None:
        found = self.request("POST", "/crm/v3/objects/tasks/search", json={
            "filterGroups": [{"filters": [{
                "propertyName": "hs_task_subject", "operator": "CONTAINS_TOKEN",
                "value": f"*{message.idempotency_key[:12]}*"}]}],
            "properties": ["hs_task_subject"], "limit": 1,
        }).json()
        results = found.get("results") or []
        return str(results[0]["id"]) if results else None

    def send(self, message: OutgoingMessage) -> None:
        company = _account_id(message)
        if message.action != CRM_STATUS and self.existing_task(message) is None:
            properties = {
                "hs_timestamp": _due(message).isoformat().replace("+00:00", "Z"),
                "hs_task_subject": _subject(message),
                "hs_task_body": message.text,
                "hs_task_status": "NOT_STARTED",
                "hs_task_priority": "HIGH",
                "hs_task_type": "TODO",
            }
            owner = self.owner_id(_owner_email(message))
            if owner:
                properties["hubspot_owner_id"] = owner
            self.request("POST", "/crm/v3/objects/tasks", json={
                "properties": properties,
                "associations": [{"to": {"id": company}, "types": [{
                    "associationCategory": "HUBSPOT_DEFINED",
                    "associationTypeId": _TASK_TO_COMPANY}]}],
            })
        self.request("PATCH", f"/crm/v3/objects/companies/{company}", json={
            "properties": {self.config.hubspot_status_property: self.status(message)}})


def _soql_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


class SalesforceChannel(_CrmChannel):
    """Salesforce REST API: a Task on the account, and a field on the account."""

    name = SALESFORCE
    token_env = "DOORSTEP_SALESFORCE_TOKEN"
    refresh_env = "DOORSTEP_SALESFORCE_REFRESH_TOKEN"

    def token_url(self) -> str:
        return f"{self.base_url}/services/oauth2/token"

    @property
    def api(self) -> str:
        return f"/services/data/{self.config.salesforce_api_version}"

    def query(self, soql: str) -> list[Mapping[str, Any]]:
        found = self.request("GET", f"{self.api}/query", params={"q": soql}).json()
        return list(found.get("records") or [])

    def find_owner(self, email: str) -> str | None:
        users = self.query(f"SELECT Id FROM User WHERE Email = '{_soql_text(email)}' "
                           "AND IsActive = true LIMIT 1")
        return str(users[0]["Id"]) if users else None

    def send(self, message: OutgoingMessage) -> None:
        account = _account_id(message)
        tag = _soql_text(message.idempotency_key[:12])
        found = message.action == CRM_STATUS or self.query(
            f"SELECT Id FROM Task WHERE WhatId = '{_soql_text(account)}' "
            f"AND Subject LIKE '%{tag}%' LIMIT 1")
        if not found:
            task: dict[str, Any] = {
                "Subject": _subject(message)[:255],
                "Description": message.text,
                "WhatId": account,
                "ActivityDate": _due(message).date().isoformat(),
                "Status": "Not Started",
                "Priority": "High",
            }
            owner = self.owner_id(_owner_email(message))
            if owner:
                task["OwnerId"] = owner
            self.request("POST", f"{self.api}/sobjects/Task", json=task)
        self.request("PATCH", f"{self.api}/sobjects/Account/{account}", json={
            self.config.salesforce_status_field: self.status(message)})


def open_crm_channel(name: str, config: CrmConfig, timeout: float) -> HubSpotChannel | \
        SalesforceChannel:
    """The CRM channel called `name`, set up from [crm]."""
    if name == HUBSPOT:
        return HubSpotChannel(config.hubspot_url, config, timeout=timeout)
    if not config.salesforce_url:
        raise ConfigError("the salesforce channel needs [crm] salesforce_url (your "
                          "instance, https://yourcompany.my.salesforce.com).")
    return SalesforceChannel(config.salesforce_url, config, timeout=timeout)
