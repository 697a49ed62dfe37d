#!/usr/bin/env python3
"""MCP Python SDK client that signs in headlessly against `mcp-obo dev`, for end-to-end tests.

Usage (with the project venv, see scripts/setup-test-tools.sh):
    .tools/venv/bin/python tests/e2e/py_client.py http://127.0.0.1:PORT/mcp [--tool HelloTool]
        [--timeout 30]

Only the MCP URL is configured. The official SDK (`mcp`, pinned in
scripts/requirements-e2e.txt) does the MCP authorization flow itself: its
`OAuthClientProvider` (an httpx2 auth) meets the 401, reads the protected resource metadata
named by the challenge, discovers the authorization server (RFC 8414), registers a public
client (RFC 7591), sends the user to the authorization endpoint with PKCE S256 and the RFC
8707 resource, checks `state` and the RFC 9207 `iss`, and exchanges the code.

The "browser" is `redirect_handler` below: it GETs the authorization URL (following plain
redirects by hand), finds the dev provider's sign-in form (`<form id="signin">`: the request
as hidden inputs plus one `<button name="user">` per dev user), submits it for the first user,
and reads `code`, `state` and `iss` from the 302 to the redirect URI, which is a loopback URL
nobody listens on and is never requested. `callback_handler` hands them to the SDK.

Then it lists the tools and calls --tool with no arguments, and prints ONE JSON line:
    {"tools": ["HelloTool", ...], "call": {...CallToolResult as JSON...},
     "protocolVersion": "...", "signIn": {"user": "...", "iss": "..."}}
On any failure it prints {"error": "..."} on one line and exits 1. The whole run is bounded
by --timeout seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

try:
    import anyio
    import httpx2
    from mcp.client import Client
    from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
except ImportError as exc:  # not the project venv, or a venv from before the e2e pins
    print(json.dumps({"error": f"{exc}: run scripts/setup-test-tools.sh"}), flush=True)
    sys.exit(1)

REDIRECT_URI = "http://127.0.0.1:9/mcp-obo-e2e/py-client/callback"


class MemoryTokenStorage:
    """The SDK's TokenStorage protocol (mcp.client.auth.TokenStorage), in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class SignInForm(HTMLParser):
    """Reads `<form id="signin">`: its action, its hidden inputs and its first user button."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = False
        self.action: str | None = None
        self.method = "get"
        self.fields: list[tuple[str, str]] = []
        self.user: tuple[str, str] | None = None
        self._in_form = False
        self._in_user_button = False
        self._label: list[str] = []
        self.user_label = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form" and a.get("id") == "signin":
            self.found = True
            self._in_form = True
            self.action = a.get("action") or None
            self.method = (a.get("method") or "get").lower()
        elif not self._in_form:
            return
        elif tag == "input" and a.get("type", "text").lower() == "hidden" and "name" in a:
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "button" and a.get("name") == "user" and self.user is None:
            self.user = (a["name"], a.get("value", ""))
            self._in_user_button = True

    def handle_data(self, data: str) -> None:
        if self._in_user_button:
            self._label.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._in_user_button:
            self._in_user_button = False
            self.user_label = "".join(self._label).strip()
        elif tag == "form" and self._in_form:
            self._in_form = False


def _text(html: str) -> str:
    """A short plain-text excerpt of a page, for error messages."""
    parts: list[str] = []

    class Strip(HTMLParser):
        def handle_data(self, data: str) -> None:
            parts.append(data)

    Strip().feed(html)
    return " ".join(" ".join(parts).split())[:300]


class HeadlessBrowser:
    """Plays the user agent for the SDK's redirect_handler / callback_handler pair."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.result: AuthorizationCodeResult | None = None
        self.user_label = ""

    def _callback(self, location: str) -> bool:
        """Takes the authorization response if `location` is the redirect URI."""
        loc, want = urlsplit(location), urlsplit(REDIRECT_URI)
        if (loc.scheme, loc.netloc, loc.path) != (want.scheme, want.netloc, want.path):
            return False
        q = {k: v[0] for k, v in parse_qs(loc.query, keep_blank_values=True).items()}
        if "error" in q:
            raise RuntimeError(f"authorization failed: {q['error']} {q.get('error_description', '')}".strip())
        if not q.get("code"):
            raise RuntimeError("the authorization response has no code")
        self.result = AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))
        return True

    async def redirect_handler(self, authorization_url: str) -> None:
        async with httpx2.AsyncClient(follow_redirects=False, timeout=self.timeout) as http:
            url = authorization_url
            response: httpx2.Response | None = None
            for _ in range(10):
                if self._callback(url):
                    return
                response = await http.get(url)
                location = response.headers.get("location")
                if response.is_redirect and location:
                    url = urljoin(url, location)
                    continue
                break
            if response is None or response.status_code != 200:
                status = response.status_code if response is not None else "none"
                body = _text(response.text) if response is not None else ""
                raise RuntimeError(f"sign-in page {url} answered HTTP {status}: {body}")
            form = SignInForm()
            form.feed(response.text)
            if not form.found or form.user is None:
                raise RuntimeError(f"no sign-in form with a user button at {url}: {_text(response.text)}")
            if form.method != "post":
                raise RuntimeError(f"the sign-in form uses method {form.method}, expected post")
            self.user_label = form.user_label
            target = urljoin(url, form.action) if form.action else url
            posted = await http.post(
                target,
                content=urlencode([*form.fields, form.user]).encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            location = posted.headers.get("location")
            if posted.status_code not in (302, 303) or not location:
                raise RuntimeError(f"the sign-in POST answered HTTP {posted.status_code}: {_text(posted.text)}")
            if not self._callback(urljoin(target, location)):
                raise RuntimeError(f"the sign-in POST redirected to {location}, not to the redirect URI")

    async def callback_handler(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise RuntimeError("the headless sign-in produced no authorization response")
        return self.result


def _describe(exc: BaseException) -> str:
    """The leaf exceptions of an exception group (anyio task groups wrap them), joined."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__ or exc.__context__
    if cause is not None and not isinstance(cause, BaseExceptionGroup) and str(cause) not in text:
        text += f" (cause: {type(cause).__name__}: {cause})"
    return text


async def run(url: str, tool: str, timeout: float) -> dict[str, Any]:
    browser = HeadlessBrowser(timeout)
    storage = MemoryTokenStorage()
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="mcp-obo e2e Python SDK client",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    with anyio.fail_after(timeout):
        async with httpx2.AsyncClient(auth=provider, timeout=timeout) as http:
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, read_timeout_seconds=timeout) as client:
                tools: list[str] = []
                cursor: str | None = None
                for _ in range(100):
                    page = await client.list_tools(cursor=cursor)
                    tools.extend(t.name for t in page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        break
                call = None
                if tool:
                    result = await client.call_tool(tool, {})
                    call = result.model_dump(mode="json", by_alias=True, exclude_none=True)
                return {
                    "tools": tools,
                    "call": call,
                    "protocolVersion": client.protocol_version,
                    "signIn": {
                        "user": browser.user_label,
                        "iss": browser.result.iss if browser.result else None,
                        "clientId": storage.client_info.client_id if storage.client_info else None,
                    },
                }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the MCP endpoint, e.g. http://127.0.0.1:7071/mcp")
    parser.add_argument("--tool", default="HelloTool", help="tool to call ('' skips the call)")
    parser.add_argument("--timeout", type=float, default=30.0, help="bound on the whole run, seconds")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    try:
        out = anyio.run(run, args.url, args.tool, args.timeout)
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one JSON line
        if isinstance(exc, KeyboardInterrupt):
            raise
        print(json.dumps({"error": _describe(exc)}), flush=True)
        return 1
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
