#!/usr/bin/env python3
"""Authlib as a relying party against a running Tessera server.

Started by conformance/run.sh, which sets the environment below. Prints one `PASS [py] ...` or
`FAIL [py] ...` line per check and exits 0 (run.sh counts the lines); an exception escaping a check
is reported as that check's FAIL, and a crash outside the checks makes run.sh count a failure.

The browser is plain HTTP (requests, its own cookie jar, redirects not followed automatically): it
follows redirects that stay on the issuer, fills the login form and answers the consent form, and
stops at the redirect to the client's redirect_uri.
"""

from __future__ import annotations

import base64
import html.parser
import json
import os
import sys
import time
import warnings
from contextlib import contextmanager
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.sync_openid import OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session, OAuthError

warnings.simplefilter("ignore", DeprecationWarning)

ISSUER = os.environ["TESSERA_ISSUER"]
CLIENT_ID = os.environ["RP_CLIENT_ID"]
CLIENT_SECRET = os.environ["RP_CLIENT_SECRET"]
REDIRECT_URI = os.environ["RP_REDIRECT_URI"]
RS_ID = os.environ["RS_CLIENT_ID"]
RS_SECRET = os.environ["RS_CLIENT_SECRET"]
OTHER_ID = os.environ["OTHER_CLIENT_ID"]
OTHER_SECRET = os.environ["OTHER_CLIENT_SECRET"]
USERNAME = os.environ["TEST_USERNAME"]
PASSWORD = os.environ["TEST_PASSWORD"]
USER_ID = os.environ["TEST_USER_ID"]
EMAIL = os.environ["TEST_EMAIL"]
GIVEN_NAME = os.environ["TEST_GIVEN_NAME"]
FAMILY_NAME = os.environ["TEST_FAMILY_NAME"]
SCOPE = "openid profile email offline_access"
TIMEOUT = 15
TAG = "[py]"


# --------------------------------------------------------------------------------------------
# Reporting


class NotRun(Exception):
    """A check whose prerequisite failed earlier."""


RESULTS = {"pass": 0, "fail": 0}
STATE: dict = {}


def one_line(text: object, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextmanager
def check(name: str):
    try:
        yield
    except NotRun as e:
        RESULTS["fail"] += 1
        print(f"FAIL {TAG} {name} -- not run: {e}", flush=True)
    except AssertionError as e:
        RESULTS["fail"] += 1
        print(f"FAIL {TAG} {name} -- {one_line(e)}", flush=True)
    except Exception as e:  # noqa: BLE001 - any library error is this check's failure
        RESULTS["fail"] += 1
        print(f"FAIL {TAG} {name} -- {type(e).__name__}: {one_line(e)}", flush=True)
    else:
        RESULTS["pass"] += 1
        print(f"PASS {TAG} {name}", flush=True)


def describe(resp) -> str:
    ctype = resp.headers.get("Content-Type", "")
    if "json" in ctype:
        return f"HTTP {resp.status_code}: {one_line(resp.text, 160)}"
    return f"HTTP {resp.status_code} ({ctype or 'no content type'})"


def need(*keys: str):
    values = []
    for key in keys:
        if STATE.get(key) is None:
            raise NotRun(f"needs {key} from an earlier check")
        values.append(STATE[key])
    return values[0] if len(values) == 1 else values


def expect(cond: bool, message: str):
    if not cond:
        raise AssertionError(message)


# --------------------------------------------------------------------------------------------
# A browser without JavaScript: cookie jar, manual redirects, the login and consent forms


class _Forms(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._current = {"action": attrs.get("action", ""), "method": attrs.get("method", "get").lower(),
                             "fields": {}, "inputs": [], "buttons": []}
            self.forms.append(self._current)
        elif self._current is not None and tag == "input":
            self._current["inputs"].append(attrs.get("name", ""))
            if attrs.get("type", "text").lower() == "hidden" and attrs.get("name"):
                self._current["fields"][attrs["name"]] = attrs.get("value", "")
        elif self._current is not None and tag == "button" and attrs.get("name"):
            self._current["buttons"].append((attrs["name"], attrs.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


class Outcome:
    def __init__(self, pages, location=None, response=None):
        self.pages = pages  # ["login", "consent"] as they were shown
        self.location = location  # the redirect that leaves the issuer (to the client)
        self.response = response  # a final non-redirect response on the issuer, if any

    def params(self) -> dict:
        expect(self.location is not None, f"no redirect to the client (pages {self.pages}, "
               f"status {getattr(self.response, 'status_code', None)})")
        query = parse_qs(urlsplit(self.location).query)
        return {k: v[0] for k, v in query.items()}


class Browser:
    def __init__(self):
        self.http = requests.Session()

    def authorize(self, url: str, decision: str = "allow", login: bool = True, post: bool = False) -> Outcome:
        pages: list[str] = []
        if post:  # the authorization request as a form POST (OIDC Core 3.1.2.1)
            parts = urlsplit(url)
            resp = self.http.post(parts._replace(query="").geturl(), data=parse_qs(parts.query),
                                  allow_redirects=False, timeout=TIMEOUT)
        else:
            resp = self.http.get(url, allow_redirects=False, timeout=TIMEOUT)
        for _ in range(12):
            if resp.status_code in (301, 302, 303, 307, 308):
                target = urljoin(resp.url, resp.headers["Location"])
                if not same_origin(target, ISSUER):
                    return Outcome(pages, location=target)
                resp = self.http.get(target, allow_redirects=False, timeout=TIMEOUT)
                continue
            if resp.status_code != 200 or "text/html" not in resp.headers.get("Content-Type", ""):
                return Outcome(pages, response=resp)
            parser = _Forms()
            parser.feed(resp.text)
            form = next((f for f in parser.forms if f["method"] == "post"), None)
            if form is None:
                return Outcome(pages, response=resp)
            data = dict(form["fields"])
            if "password" in form["inputs"]:
                expect(login, "the server asked for a login where none was expected")
                data.update(username=USERNAME, password=PASSWORD)
                pages.append("login")
            elif any(name == "decision" for name, _ in form["buttons"]):
                data["decision"] = decision
                pages.append("consent")
            else:
                return Outcome(pages, response=resp)
            resp = self.http.post(urljoin(resp.url, form["action"]), data=data,
                                  allow_redirects=False, timeout=TIMEOUT)
        raise AssertionError(f"too many steps in the authorization (pages {pages})")


# --------------------------------------------------------------------------------------------
# Authlib pieces


class IdTokens(OpenIDMixin):
    """Authlib's own ID token validation (OpenIDMixin.parse_id_token, the code behind its Flask,
    Django and Starlette clients), fed with the discovered metadata: JWKS fetch, signature with
    the algorithms the provider advertises, iss, aud, exp/iat, nonce, azp, at_hash."""

    def __init__(self, metadata: dict, client_id: str):
        self.server_metadata = dict(metadata)
        self.client_id = client_id

    def load_server_metadata(self):
        return self.server_metadata

    @contextmanager
    def _get_session(self):
        with OAuth2Session(self.client_id) as session:
            yield session

    def validate(self, token: dict, nonce: str | None):
        options = {
            "iss": {"essential": True, "value": ISSUER},
            "aud": {"essential": True, "values": [self.client_id]},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        return self.parse_id_token(token, nonce, claims_options=options, leeway=5)


def rp_session() -> OAuth2Session:
    return OAuth2Session(CLIENT_ID, CLIENT_SECRET, scope=SCOPE, redirect_uri=REDIRECT_URI,
                         code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")


def rs_session() -> OAuth2Session:
    return OAuth2Session(RS_ID, RS_SECRET, token_endpoint_auth_method="client_secret_basic")


def start(meta: dict, browser: Browser, scope: str = SCOPE, post: bool = False, **extra):
    """One authorization request built by authlib; returns (session, outcome, verifier, state, nonce)."""
    session = rp_session()
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = session.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier,
                                                  nonce=nonce, scope=scope, **extra)
    return session, browser.authorize(url, post=post), verifier, state, nonce


class Captured:
    """The raw token endpoint responses, seen through authlib's compliance hooks."""

    def __init__(self, session: OAuth2Session):
        self.responses = []
        for hook in ("access_token_response", "refresh_token_response"):
            session.register_compliance_hook(hook, self._keep)

    def _keep(self, resp):
        self.responses.append(resp)
        return resp

    def expect_no_store(self):
        expect(self.responses, "no token response seen")
        for resp in self.responses:
            expect("application/json" in resp.headers.get("Content-Type", ""),
                   f"Content-Type {resp.headers.get('Content-Type')!r}")
            expect("no-store" in resp.headers.get("Cache-Control", ""),
                   f"Cache-Control {resp.headers.get('Cache-Control')!r} (RFC 6749 5.1 wants no-store)")


def same_claims_after_refresh(first: dict, second: dict):
    # OIDC Core 12.2: iss, sub, aud (and azp) as in the original ID token; auth_time is the time of
    # the original authentication, not of the refresh.
    for key in ("iss", "sub", "aud", "azp", "auth_time"):
        if key in first or key in second:
            expect(first.get(key) == second.get(key), f"refreshed id_token {key} {second.get(key)!r} != {first.get(key)!r}")


def redeem(meta: dict, session: OAuth2Session, outcome: Outcome, verifier: str, state: str) -> dict:
    params = outcome.params()
    expect("code" in params, f"no code in the redirect: {params}")
    expect(params.get("iss") == ISSUER, f"iss {params.get('iss')!r} != issuer")
    return dict(session.fetch_token(meta["token_endpoint"], authorization_response=outcome.location,
                                    state=state, code_verifier=verifier))


def userinfo_status(meta: dict, access_token: str) -> int:
    with OAuth2Session(CLIENT_ID, token={"access_token": access_token, "token_type": "Bearer"}) as s:
        return s.get(meta["userinfo_endpoint"], timeout=TIMEOUT).status_code


def endpoint(meta: dict, name: str, path: str) -> str:
    # Discovery is checked on its own; fall back to the documented path so the behaviour behind
    # it is still exercised when only the metadata is missing.
    return meta.get(name) or ISSUER + path


def introspect(meta: dict, token: str, hint: str | None = None, session=None) -> dict:
    """Introspects as the resource server, or as `session`'s client (RFC 7662 §4: a refresh token
    answers only its own client)."""
    with session or rs_session() as caller:
        resp = caller.introspect_token(endpoint(meta, "introspection_endpoint", "/introspect"), token=token,
                                       token_type_hint=hint, timeout=TIMEOUT)
    expect(resp.status_code == 200, f"introspection answered {describe(resp)}")
    return resp.json()


def revoke(meta: dict, session: OAuth2Session, token: str, hint: str | None = None):
    resp = session.revoke_token(endpoint(meta, "revocation_endpoint", "/revoke"), token=token,
                                token_type_hint=hint, timeout=TIMEOUT)
    expect(resp.status_code == 200, f"revocation answered {describe(resp)}")


def refresh(meta: dict, session: OAuth2Session, refresh_token: str) -> dict:
    return dict(session.refresh_token(meta["token_endpoint"], refresh_token=refresh_token, timeout=TIMEOUT))


def expect_invalid_grant(fn, what: str):
    try:
        fn()
    except OAuthError as e:
        expect(e.error == "invalid_grant", f"{what}: error {e.error!r}, expected invalid_grant")
        return
    raise AssertionError(f"{what} succeeded; expected invalid_grant")


def jwt_header(token: str) -> dict:
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


# --------------------------------------------------------------------------------------------
# The checks


def main() -> int:
    meta: dict = {}
    browser = Browser()

    with check("discovery: issuer, endpoints, code + S256 + RS256 + iss parameter advertised"):
        resp = requests.get(ISSUER + "/.well-known/openid-configuration", timeout=TIMEOUT)
        expect(resp.status_code == 200, f"status {resp.status_code}")
        meta = resp.json()
        expect(meta.get("issuer") == ISSUER, f"issuer {meta.get('issuer')!r}")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
            expect(str(meta.get(key, "")).startswith(ISSUER + "/"), f"{key} = {meta.get(key)!r}")
        expect("code" in meta.get("response_types_supported", []), "response_types_supported lacks code")
        expect("S256" in meta.get("code_challenge_methods_supported", []), "S256 not advertised")
        expect("RS256" in meta.get("id_token_signing_alg_values_supported", []), "RS256 not advertised")
        expect(meta.get("authorization_response_iss_parameter_supported") is True, "RFC 9207 not advertised")
        STATE["meta"] = meta

    with check("discovery: revocation, introspection, end_session endpoints; refresh_token in grant_types_supported"):
        meta = need("meta")
        for key, path in (("revocation_endpoint", "/revoke"), ("introspection_endpoint", "/introspect"),
                          ("end_session_endpoint", "/logout")):
            expect(meta.get(key) == ISSUER + path, f"{key} = {meta.get(key)!r}, expected {ISSUER + path}")
        expect("refresh_token" in meta.get("grant_types_supported", []),
               f"grant_types_supported = {meta.get('grant_types_supported')}")

    ids = IdTokens(STATE.get("meta") or {}, CLIENT_ID)

    with check("unregistered redirect_uri: 400 HTML page, no redirect"):
        meta = need("meta")
        session = rp_session()
        url, _ = session.create_authorization_url(meta["authorization_endpoint"], code_verifier=generate_token(48),
                                                  nonce=generate_token(20),
                                                  redirect_uri="http://127.0.0.1:9/not-registered")
        resp = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
        expect(resp.status_code == 400, f"status {resp.status_code}, Location {resp.headers.get('Location')!r}")
        expect("Location" not in resp.headers, "a Location header was sent")
        expect("text/html" in resp.headers.get("Content-Type", ""), f"content type {resp.headers.get('Content-Type')}")

    with check("prompt=none without a session: error=login_required redirect with state and iss"):
        meta = need("meta")
        session = rp_session()
        url, state = session.create_authorization_url(meta["authorization_endpoint"],
                                                      code_verifier=generate_token(48),
                                                      nonce=generate_token(20), prompt="none")
        outcome = Browser().authorize(url, login=False)
        params = outcome.params()
        expect(params.get("error") == "login_required", f"redirect params {params}")
        expect(params.get("state") == state, "state not echoed")
        expect(params.get("iss") == ISSUER, f"iss {params.get('iss')!r}")
        expect(not outcome.pages, f"pages were shown: {outcome.pages}")

    with check("response_type missing: error redirect (invalid_request or unsupported_response_type) or 400 page"):
        meta = need("meta")
        session = rp_session()
        url, state = session.create_authorization_url(meta["authorization_endpoint"], code_verifier=generate_token(48),
                                                      nonce=generate_token(20))
        parts = urlsplit(url)
        query = {k: v for k, v in parse_qs(parts.query).items() if k != "response_type"}
        outcome = Browser().authorize(parts._replace(query=urlencode(query, doseq=True)).geturl(), login=False)
        if outcome.location is not None:
            params = outcome.params()
            expect(params.get("error") in ("invalid_request", "unsupported_response_type"), f"redirect params {params}")
            expect("code" not in params, "a code was issued")
        else:
            expect(outcome.response.status_code == 400, f"status {outcome.response.status_code}")

    with check("PKCE is required: a request without code_challenge gets an error redirect"):
        meta = need("meta")
        plain = OAuth2Session(CLIENT_ID, CLIENT_SECRET, scope=SCOPE, redirect_uri=REDIRECT_URI)
        url, state = plain.create_authorization_url(meta["authorization_endpoint"], nonce=generate_token(20))
        params = Browser().authorize(url, login=False).params()
        expect(params.get("error") == "invalid_request", f"redirect params {params}")
        expect(params.get("state") == state, "state not echoed")

    with check("code flow: login and consent forms, redirect with code, state and iss (RFC 9207)"):
        meta = need("meta")
        session, outcome, verifier, state, nonce = start(meta, browser)
        expect(outcome.pages == ["login", "consent"], f"pages shown: {outcome.pages}")
        params = outcome.params()
        expect(outcome.location.startswith(REDIRECT_URI + "?"), f"redirected to {outcome.location}")
        expect(params.get("state") == state, "state mismatch")
        expect(params.get("iss") == ISSUER, f"iss {params.get('iss')!r}")
        expect(params.get("code"), "no code")
        STATE["login_time"] = time.time()
        STATE["flow"] = (session, outcome, verifier, state, nonce)

    with check("token: code + PKCE S256 verifier (client_secret_basic) gives Bearer access token and id_token"):
        session, outcome, verifier, state, nonce = need("flow")
        STATE["captured"] = Captured(session)
        token = redeem(meta, session, outcome, verifier, state)
        expect(str(token.get("token_type", "")).lower() == "bearer", f"token_type {token.get('token_type')!r}")
        expect(token.get("access_token"), "no access_token")
        expect(isinstance(token.get("expires_in"), int) and token["expires_in"] > 0, "bad expires_in")
        expect(token.get("id_token"), "no id_token")
        expect(set(SCOPE.split()) <= set(str(token.get("scope", "")).split()), f"scope {token.get('scope')!r}")
        STATE["token"] = token

    with check("token: response is JSON with Cache-Control: no-store"):
        need("token")
        STATE["captured"].expect_no_store()

    with check("token: refresh_token issued (refresh_token grant + offline_access)"):
        token = need("token")
        expect(token.get("refresh_token"), f"no refresh_token; keys {sorted(token)}")
        STATE["rt1"] = token["refresh_token"]

    with check("id_token: authlib validates signature (JWKS), iss, aud, exp, nonce; RS256; sub = user id"):
        token = need("token")
        _, _, _, _, nonce = STATE["flow"]
        claims = ids.validate(token, nonce)
        expect(jwt_header(token["id_token"]).get("alg") == "RS256", f"alg {jwt_header(token['id_token'])}")
        expect(claims["sub"] == USER_ID, f"sub {claims['sub']!r} != {USER_ID}")
        expect(isinstance(claims.get("auth_time"), int), "no auth_time")
        STATE["claims"] = dict(claims)

    with check("id_token: authlib rejects it with a wrong nonce"):
        token = need("token")
        try:
            ids.validate(token, "not-the-nonce")
        except Exception:  # noqa: BLE001 - authlib raises joserfc's InvalidClaimError
            pass
        else:
            raise AssertionError("accepted")

    with check("id_token: authlib rejects a tampered signature"):
        token = need("token")
        head, body, sig = token["id_token"].split(".")
        sig = ("A" if sig[0] != "A" else "B") + sig[1:]
        try:
            ids.validate({**token, "id_token": f"{head}.{body}.{sig}"}, STATE["flow"][4])
        except Exception:  # noqa: BLE001
            pass
        else:
            raise AssertionError("accepted")

    with check("userinfo GET (Bearer header): sub, profile and email claims"):
        token, claims = need("token", "claims")
        with OAuth2Session(CLIENT_ID, token=token) as s:
            resp = s.get(meta["userinfo_endpoint"], timeout=TIMEOUT)
        expect(resp.status_code == 200, describe(resp))
        info = resp.json()
        expect(info.get("sub") == claims["sub"], f"sub {info.get('sub')!r}")
        expected = {"email": EMAIL, "given_name": GIVEN_NAME, "family_name": FAMILY_NAME,
                    "preferred_username": USERNAME, "name": f"{GIVEN_NAME} {FAMILY_NAME}"}
        for key, value in expected.items():
            expect(info.get(key) == value, f"{key} = {info.get(key)!r}")

    with check("userinfo POST (access_token in the form body)"):
        token, claims = need("token", "claims")
        with OAuth2Session(CLIENT_ID, token=token, token_placement="body") as s:
            resp = s.post(meta["userinfo_endpoint"], data={}, timeout=TIMEOUT)
        expect(resp.status_code == 200, describe(resp))
        expect(resp.json().get("sub") == claims["sub"], "sub mismatch")

    with check("userinfo without a token: 401"):
        meta = need("meta")
        resp = requests.get(meta["userinfo_endpoint"], timeout=TIMEOUT)
        expect(resp.status_code == 401, f"status {resp.status_code}")

    with check("token: wrong client secret is 401 invalid_client"):
        meta = need("meta")
        resp = requests.post(meta["token_endpoint"], auth=(CLIENT_ID, "wrong-secret"),
                             data={"grant_type": "authorization_code", "code": "x", "redirect_uri": REDIRECT_URI,
                                   "code_verifier": generate_token(48)}, timeout=TIMEOUT)
        expect(resp.status_code == 401, f"status {resp.status_code}")
        expect(resp.json().get("error") == "invalid_client", describe(resp))

    with check("SSO: a second authorization in the same browser shows no login and no consent"):
        meta = need("meta")
        session, outcome, verifier, state, nonce = start(meta, browser)
        expect(outcome.pages == [], f"pages shown: {outcome.pages}")
        expect(outcome.params().get("state") == state, "state mismatch")
        STATE["sso_flow"] = (session, outcome, verifier, state, nonce)

    with check("authorization request sent as a form POST succeeds"):
        meta = need("meta")
        session, outcome, verifier, state, nonce = start(meta, browser, post=True)
        ids.validate(redeem(meta, session, outcome, verifier, state), nonce)

    with check("unknown authorization parameter is ignored (extra=foobar)"):
        meta = need("meta")
        session, outcome, verifier, state, nonce = start(meta, browser, extra="foobar")
        ids.validate(redeem(meta, session, outcome, verifier, state), nonce)

    with check("claims parameter (userinfo name essential) with scope openid succeeds"):
        meta = need("meta")
        claims_req = json.dumps({"userinfo": {"name": {"essential": True}}})
        session, outcome, verifier, state, nonce = start(meta, browser, scope="openid", claims=claims_req)
        token = redeem(meta, session, outcome, verifier, state)
        ids.validate(token, nonce)
        with OAuth2Session(CLIENT_ID, token=token) as s:
            resp = s.get(meta["userinfo_endpoint"], timeout=TIMEOUT)
        expect(resp.status_code == 200 and resp.json().get("sub") == USER_ID, describe(resp))

    with check("acr_values=\"1 2\" with scope openid succeeds"):
        meta = need("meta")
        session, outcome, verifier, state, nonce = start(meta, browser, scope="openid", acr_values="1 2")
        ids.validate(redeem(meta, session, outcome, verifier, state), nonce)

    with check("max_age=10000: no new login, auth_time present and unchanged"):
        meta = need("meta")
        first_auth = need("claims")["auth_time"]
        session, outcome, verifier, state, nonce = start(meta, browser, max_age="10000")
        expect(outcome.pages == [], f"pages shown: {outcome.pages}")
        claims = ids.validate(redeem(meta, session, outcome, verifier, state), nonce)
        expect(claims.get("auth_time") == first_auth, f"auth_time {claims.get('auth_time')} != {first_auth}")

    with check("code reuse: second redemption of a code is invalid_grant"):
        session, outcome, verifier, state, nonce = need("sso_flow")
        first = redeem(meta, session, outcome, verifier, state)
        STATE["reused_at"] = first["access_token"]
        expect_invalid_grant(lambda: redeem(meta, rp_session(), outcome, verifier, state), "second redemption")

    with check("code reuse: the access token issued from the replayed code is revoked (userinfo 401)"):
        at = need("reused_at")
        status = userinfo_status(meta, at)
        expect(status == 401, f"userinfo answered {status}")

    with check("PKCE: a wrong code_verifier is invalid_grant"):
        meta = need("meta")
        session, outcome, verifier, state, nonce = start(meta, browser)
        expect_invalid_grant(lambda: redeem(meta, session, outcome, generate_token(48), state), "wrong verifier")

    with check("scope openid email: userinfo has email and no profile claims"):
        meta = need("meta")
        session, outcome, verifier, state, nonce = start(meta, browser, scope="openid email")
        token = redeem(meta, session, outcome, verifier, state)
        ids.validate(token, nonce)
        with OAuth2Session(CLIENT_ID, token=token) as s:
            info = s.get(meta["userinfo_endpoint"], timeout=TIMEOUT).json()
        expect(info.get("email") == EMAIL, f"email {info.get('email')!r}")
        for key in ("given_name", "family_name", "name", "preferred_username"):
            expect(key not in info, f"{key} present with scope openid email")
        expect("refresh_token" not in token, "refresh_token issued without offline_access")

    with check("max_age=1: a 2 s old session must log in again; auth_time is fresh"):
        meta = need("meta")
        first_auth = need("claims")["auth_time"]
        time.sleep(max(0.0, 2.2 - (time.time() - need("login_time"))))
        before = int(time.time())
        session, outcome, verifier, state, nonce = start(meta, browser, max_age="1")
        expect("login" in outcome.pages, f"pages shown: {outcome.pages}")
        token = redeem(meta, session, outcome, verifier, state)
        claims = ids.validate(token, nonce)
        expect(isinstance(claims.get("auth_time"), int), "no auth_time with max_age")
        expect(claims["auth_time"] >= before and claims["auth_time"] > first_auth,
               f"auth_time {claims.get('auth_time')} < {before}")

    with check("introspection (rs client): active access token with scope, client_id, sub, exp, iat, token_type"):
        token = need("token")
        info = introspect(meta, token["access_token"], "access_token")
        expect(info.get("active") is True, f"answer {info}")
        expect(info.get("client_id") == CLIENT_ID, f"client_id {info.get('client_id')!r}")
        expect(info.get("sub") == USER_ID, f"sub {info.get('sub')!r}")
        expect("openid" in str(info.get("scope", "")).split(), f"scope {info.get('scope')!r}")
        for key in ("exp", "iat"):
            expect(isinstance(info.get(key), int), f"{key} = {info.get(key)!r}")
        expect(info.get("token_type"), "no token_type")

    with check("introspection: active refresh token, for its own client"):
        rt = need("rt1")
        info = introspect(meta, rt, "refresh_token", rp_session())
        expect(info.get("active") is True, f"answer {info}")
        expect(info.get("client_id") == CLIENT_ID, f"client_id {info.get('client_id')!r}")

    with check("introspection: a refresh token is exactly {\"active\": false} for a resource server"):
        info = introspect(meta, need("rt1"), "refresh_token")
        expect(info == {"active": False}, f"answer {info}")

    with check("introspection: unknown token is exactly {\"active\": false}"):
        meta = need("meta")
        info = introspect(meta, "not-a-token-" + generate_token(20))
        expect(info == {"active": False}, f"answer {info}")

    with check("introspection without client authentication: 401"):
        meta = need("meta")
        resp = requests.post(endpoint(meta, "introspection_endpoint", "/introspect"),
                             data={"token": "whatever"}, timeout=TIMEOUT)
        expect(resp.status_code == 401, f"status {resp.status_code}")

    with check("refresh: rotation gives a new access token and a new refresh token"):
        session = need("flow")[0]
        rt1 = need("rt1")
        token2 = refresh(meta, session, rt1)
        expect(token2.get("access_token") and token2["access_token"] != STATE["token"]["access_token"],
               "no new access token")
        expect(token2.get("refresh_token") and token2["refresh_token"] != rt1, "refresh token not rotated")
        if token2.get("id_token"):
            same_claims_after_refresh(STATE["claims"], dict(ids.validate(token2, None)))
        expect(userinfo_status(meta, token2["access_token"]) == 200, "new access token refused at userinfo")
        STATE["token2"] = token2

    with check("refresh: response is JSON with Cache-Control: no-store"):
        need("token2")
        STATE["captured"].expect_no_store()

    with check("refresh reuse: presenting the rotated refresh token again is invalid_grant"):
        session, rt1 = need("flow")[0], need("rt1")
        need("token2")
        expect_invalid_grant(lambda: refresh(meta, session, rt1), "reused refresh token")

    with check("refresh reuse: the newest refresh token of the family is now dead too"):
        session, token2 = need("flow")[0], need("token2")
        expect_invalid_grant(lambda: refresh(meta, session, token2["refresh_token"]), "newest refresh token")

    with check("refresh reuse: the family's access tokens introspect as {\"active\": false}"):
        token, token2 = need("token", "token2")
        for name, at in (("first", token["access_token"]), ("refreshed", token2["access_token"])):
            info = introspect(meta, at)
            expect(info == {"active": False}, f"{name} access token: {info}")
        expect(userinfo_status(meta, token2["access_token"]) == 401, "refreshed access token still works")

    with check("refresh token is bound to its client: another client presenting it gets invalid_grant"):
        meta = need("meta")
        session, outcome, verifier, state, nonce = start(meta, browser)
        rt = redeem(meta, session, outcome, verifier, state).get("refresh_token")
        expect(rt, "no refresh_token")
        other = OAuth2Session(OTHER_ID, OTHER_SECRET, scope=SCOPE, token_endpoint_auth_method="client_secret_basic")
        expect_invalid_grant(lambda: refresh(meta, other, rt), "refresh with another client's credentials")

    with check("revocation: access token revoked (200), then inactive and refused at userinfo"):
        meta = need("meta")
        session, outcome, verifier, state, nonce = start(meta, browser)
        token = redeem(meta, session, outcome, verifier, state)
        STATE["rev_token"] = token
        revoke(meta, session, token["access_token"], "access_token")
        info = introspect(meta, token["access_token"])
        expect(info == {"active": False}, f"introspection after revocation: {info}")
        expect(userinfo_status(meta, token["access_token"]) == 401, "revoked access token works at userinfo")

    with check("revocation: refresh token revoked (200), refresh is invalid_grant, its access tokens inactive"):
        meta = need("meta")
        session, outcome, verifier, state, nonce = start(meta, browser)
        token = redeem(meta, session, outcome, verifier, state)
        rt = token.get("refresh_token")
        expect(rt, "no refresh_token")
        token2 = refresh(meta, session, rt)
        revoke(meta, session, token2["refresh_token"], "refresh_token")
        expect_invalid_grant(lambda: refresh(meta, session, token2["refresh_token"]), "revoked refresh token")
        info = introspect(meta, token2["access_token"])
        expect(info == {"active": False}, f"family access token after revocation: {info}")

    with check("revocation: unknown token is 200"):
        meta = need("meta")
        revoke(meta, rp_session(), "not-a-token-" + generate_token(20))

    with check("revocation without client authentication: 401"):
        meta = need("meta")
        resp = requests.post(endpoint(meta, "revocation_endpoint", "/revoke"), data={"token": "whatever"},
                             timeout=TIMEOUT)
        expect(resp.status_code == 401, f"status {resp.status_code}")

    # The self-service API's token, for the schemathesis stage of run.sh (API_TOKEN_FILE).
    with check("an access token of scope account for the self-service API"):
        meta = need("meta")
        session, outcome, verifier, state, nonce = start(meta, browser, scope="openid account")
        token = redeem(meta, session, outcome, verifier, state)
        expect("account" in token.get("scope", "").split(), f"scope {token.get('scope')!r}")
        with open(os.environ["API_TOKEN_FILE"], "w", encoding="utf-8") as out:
            out.write(token["access_token"])

    return 0


if __name__ == "__main__":
    code = main()
    print(f"[py] {RESULTS['pass']} checks passed, {RESULTS['fail']} checks failed", file=sys.stderr)
    sys.exit(code)
