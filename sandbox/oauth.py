"""OAuth v2: the authorize consent page, oauth.v2.access (code and refresh grants) and oauth.v2.exchange."""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from sandbox.errors import SlackError
from sandbox.pages import render
from sandbox.state import AuthorizationCode, SandboxState, Token


def split_scopes(value: str | None) -> list[str]:
    """Scopes from a comma- (or space-) separated string, in order, without blanks or repeats."""
    scopes: list[str] = []
    for part in (value or "").replace(" ", ",").split(","):
        if part and part not in scopes:
            scopes.append(part)
    return scopes


def client_credentials(authorization: str | None, params: dict[str, str]) -> tuple[str, str]:
    """The client id and secret from HTTP Basic (what slack_sdk sends) or from form fields."""
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise SlackError("invalid_client_id") from None
        client_id, _, client_secret = decoded.partition(":")
        return client_id, client_secret
    return params.get("client_id", ""), params.get("client_secret", "")


def check_client(state: SandboxState, client_id: str, client_secret: str) -> None:
    """Raise `invalid_client_id` or `bad_client_secret` unless the credentials are the app's."""
    if not client_id or not hmac.compare_digest(client_id, state.config.client_id):
        raise SlackError("invalid_client_id")
    if not hmac.compare_digest(client_secret.encode(), state.config.client_secret.encode()):
        raise SlackError("bad_client_secret")


def install_target(
    state: SandboxState, user_id: str, team_id: str | None = None, org_wide: bool = False
) -> tuple[str, bool]:
    """Where a person's authorization lands: (workspace, is_enterprise_install).

    `team_id` is the workspace the person picks (default: their home one), `org_wide` the whole org, which only an org
    admin may pick. Once an org has the app org-wide, every authorization in it is an org-wide one (an org-level
    user token), as Slack's sample answer for an org-wide install shows: `team: null`, `enterprise`, and an
    `authed_user` token (https://api.slack.com/enterprise/apps/reference).
    """
    with state.lock:
        person = state.user(user_id)
        workspace = team_id or person.user.team_id
        if workspace in state.enterprises:  # an org id names the whole org
            org_wide, workspace = (
                True,
                next((t for t in person.user.workspaces if state.teams[t].enterprise_id == workspace), ""),
            )
        if workspace not in person.user.workspaces:
            raise SlackError("not_in_team")
        org = state.enterprise_of(workspace)
        if org_wide and org is None:
            raise SlackError("not_an_enterprise")
        if org_wide and not person.user.is_org_admin and not state.org_installed(workspace):
            raise SlackError("org_admin_required")
        return workspace, org is not None and (org_wide or state.org_installed(workspace))


def issue_code(
    state: SandboxState,
    *,
    user_id: str,
    bot_scopes: list[str],
    user_scopes: list[str],
    redirect_uri: str | None,
    team_id: str | None = None,
    org_wide: bool = False,
) -> str:
    """Record the person's consent (for a workspace of theirs, or their whole org) and return the code."""
    with state.lock:
        workspace, enterprise_install = install_target(state, user_id, team_id, org_wide)
        code = AuthorizationCode(
            value=f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**13)}.{secrets.token_hex(32)}",
            team_id=workspace,
            user_id=user_id,
            bot_scopes=bot_scopes,
            user_scopes=user_scopes,
            redirect_uri=redirect_uri,
            created_at=state.now(),
            is_enterprise_install=enterprise_install,
        )
        state.codes[code.value] = code
        return code.value


def _team_json(state: SandboxState, team_id: str | None) -> dict[str, str] | None:
    if team_id is None:
        return None
    team = state.team(team_id)
    return {"id": team.id, "name": team.name}


def _org_fields(state: SandboxState, team_id: str | None, enterprise_id: str | None, org_wide: bool) -> dict[str, Any]:
    """`team`, `enterprise` and `is_enterprise_install` of an OAuth answer: a workspace of an org names the org too;
    an org-wide install has `team: null`."""
    org = state.enterprises.get(enterprise_id or "") or state.enterprise_of(team_id)
    return {
        "team": None if org_wide else _team_json(state, team_id),
        "enterprise": {"id": org.id, "name": org.name} if org is not None else None,
        "is_enterprise_install": org_wide,
    }


def _bot_fields(state: SandboxState, token: Token) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "scope": ",".join(token.scopes),
        "token_type": "bot",
        "access_token": token.value,
        "bot_user_id": state.config.bot_user_id,
    }
    if token.rotating:
        fields["refresh_token"] = token.refresh_token
        fields["expires_in"] = int(token.expires_at - token.issued_at)  # type: ignore[operator]
    return fields


def _user_fields(token: Token) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": token.user_id,
        "scope": ",".join(token.scopes),
        "access_token": token.value,
        "token_type": "user",
    }
    if token.rotating:
        fields["refresh_token"] = token.refresh_token
        fields["expires_in"] = int(token.expires_at - token.issued_at)  # type: ignore[operator]
    return fields


def install(
    state: SandboxState,
    *,
    user_id: str,
    bot_scopes: list[str],
    user_scopes: list[str],
    team_id: str | None = None,
    org_wide: bool = False,
) -> dict[str, Any]:
    """Issue the tokens a completed authorization yields and return oauth.v2.access's answer.

    `team_id` and `org_wide` say where (see `install_target`); an org-wide install's tokens are org-level.
    """
    with state.lock:
        person = state.user(user_id)
        workspace, enterprise_install = install_target(state, user_id, team_id, org_wide)
        return _grant(state, person.user.id, workspace, enterprise_install, bot_scopes, user_scopes)


def _grant(
    state: SandboxState, user_id: str, team_id: str, org_wide: bool, bot_scopes: list[str], user_scopes: list[str]
) -> dict[str, Any]:
    """Issue the tokens of an authorization in a workspace (or, `org_wide`, its org) and return the answer."""
    person = state.user(user_id)
    team = state.team(team_id)
    if not team.distributed:
        raise SlackError("invalid_team_for_non_distributed_app")
    if person.deleted:
        raise SlackError("account_inactive")
    org: dict[str, Any] = {"enterprise_id": team.enterprise_id, "is_enterprise_install": org_wide}
    answer: dict[str, Any] = {"ok": True, "app_id": state.config.app_id, "authed_user": {"id": user_id}}
    if user_scopes:
        user_token = state.issue_token("user", team.id, user_id, user_scopes, "authorization_code", **org)
        answer["authed_user"] = _user_fields(user_token)
    if bot_scopes:
        bot_token = state.issue_token("bot", team.id, state.config.bot_user_id, bot_scopes, "authorization_code", **org)
        answer.update(_bot_fields(state, bot_token))
        if org_wide and team.enterprise_id is not None:  # install_target allows org_wide only in an org
            state.installed_enterprises.add(team.enterprise_id)
        else:
            state.installed_teams.add(team.id)
    answer.update(_org_fields(state, team.id, team.enterprise_id, org_wide))
    return answer


def _refresh_error(state: SandboxState) -> SlackError:
    return SlackError(state.config.refresh_error_name)


def _code_grant(state: SandboxState, params: dict[str, str]) -> dict[str, Any]:
    code = state.codes.get(params.get("code", ""))
    if code is None or code.used or state.now() - code.created_at > state.config.code_ttl_seconds:
        raise SlackError("invalid_code")
    code.used = True
    given = params.get("redirect_uri") or None
    if code.redirect_uri is not None and given != code.redirect_uri:
        raise SlackError("bad_redirect_uri")
    if code.redirect_uri is None and given is not None and given not in state.config.redirect_urls:
        raise SlackError("bad_redirect_uri")
    return _grant(state, code.user_id, code.team_id, code.is_enterprise_install, code.bot_scopes, code.user_scopes)


def _refresh_grant(state: SandboxState, params: dict[str, str]) -> dict[str, Any]:
    if not state.config.token_rotation:
        raise SlackError("token_rotation_not_enabled")
    refresh = state.refresh_tokens.get(params.get("refresh_token", ""))
    now = state.now()
    if refresh is None or refresh.revoked_at is not None:
        raise _refresh_error(state)
    if refresh.used_at is not None and now - refresh.used_at > state.config.refresh_grace_seconds:
        raise _refresh_error(state)
    if refresh.kind == "user" and state.users[refresh.user_id].deleted:
        raise SlackError("account_inactive")
    if refresh.used_at is None:
        refresh.used_at = now
    org: dict[str, Any] = {"enterprise_id": refresh.enterprise_id, "is_enterprise_install": refresh.is_enterprise_install}
    token = state.issue_token(refresh.kind, refresh.team_id, refresh.user_id, refresh.scopes, "refresh_token", True, **org)
    state.record_refresh(refresh, token)
    if refresh.kind == "user":
        state.refreshes_by_user[refresh.user_id] += 1
    answer: dict[str, Any] = {"ok": True, "app_id": state.config.app_id}
    if refresh.kind == "bot":
        answer.update(_bot_fields(state, token))
    else:
        answer.update(
            {
                "scope": ",".join(token.scopes),
                "token_type": "user",
                "access_token": token.value,
                "refresh_token": token.refresh_token,
                "expires_in": int(token.expires_at - token.issued_at),  # type: ignore[operator]
                "user_id": token.user_id,
            }
        )
    answer.update(_org_fields(state, token.team_id, token.enterprise_id, token.is_enterprise_install))
    return answer


def access(state: SandboxState, params: dict[str, str], authorization: str | None) -> dict[str, Any]:
    """oauth.v2.access: the authorization_code grant and the refresh_token grant."""
    with state.lock:
        client_id, client_secret = client_credentials(authorization, params)
        grant_type = params.get("grant_type") or "authorization_code"
        try:
            check_client(state, client_id, client_secret)
            if grant_type == "authorization_code":
                answer = _code_grant(state, params)
            elif grant_type == "refresh_token":
                answer = _refresh_grant(state, params)
            else:
                raise SlackError("invalid_grant_type")
        except SlackError:
            state.grant_failures[grant_type] += 1
            raise
        state.grants[grant_type] += 1
        return answer


def exchange(state: SandboxState, params: dict[str, str], authorization: str | None) -> dict[str, Any]:
    """oauth.v2.exchange: turn a long-lived xoxp-/xoxb- token into a rotating one, once."""
    with state.lock:
        try:
            check_client(state, *client_credentials(authorization, params))
            if not state.config.token_rotation:
                raise SlackError("token_rotation_not_enabled")
            bearer = authorization[7:].strip() if authorization and authorization.lower().startswith("bearer ") else None
            old = state.authenticate(params.get("token") or bearer)
            if old.rotating:
                raise SlackError("invalid_token")
            if old.exchanged:
                raise SlackError("token_already_exchanged")
            old.exchanged = True
            org: dict[str, Any] = {"enterprise_id": old.enterprise_id, "is_enterprise_install": old.is_enterprise_install}
            token = state.issue_token(old.kind, old.team_id, old.user_id, old.scopes, "exchange", True, **org)
        except SlackError:
            state.grant_failures["exchange"] += 1
            raise
        state.grants["exchange"] += 1
        answer: dict[str, Any] = {
            "ok": True,
            "app_id": state.config.app_id,
            "access_token": token.value,
            "refresh_token": token.refresh_token,
            "expires_in": int(token.expires_at - token.issued_at),  # type: ignore[operator]
            "token_type": token.kind,
            "scope": ",".join(token.scopes),
            **_org_fields(state, token.team_id, token.enterprise_id, token.is_enterprise_install),
        }
        if token.kind == "user":
            answer["user_id"] = token.user_id
        else:
            answer["bot_user_id"] = token.user_id
        return answer


# ----- the authorize page -----

CONSENT_TOKEN_TTL_SECONDS = 3600.0
CONSENT_ERRORS = {
    "not_in_team": "That person is not a member of the workspace picked: pick one of theirs.",
    "org_admin_required": "Only an org admin can install the app for the whole organisation.",
    "not_an_enterprise": "That workspace is not part of an Enterprise Grid organisation.",
}


def consent_token(state: SandboxState) -> str:
    """A token for one rendering of the consent page: its wall-clock time and an HMAC of it under the run's key."""
    issued = str(int(time.time()))
    return f"{issued}.{hmac.new(state.consent_key, issued.encode(), 'sha256').hexdigest()}"


def valid_consent_token(state: SandboxState, value: str) -> bool:
    """Whether `value` came from this run's consent page within the last hour."""
    issued, _, mac = value.partition(".")
    if not issued.isdigit() or not mac:
        return False
    expected = hmac.new(state.consent_key, issued.encode(), "sha256").hexdigest()
    return hmac.compare_digest(mac.encode(), expected.encode()) and time.time() - int(issued) <= CONSENT_TOKEN_TTL_SECONDS


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin.lower() in (f"http://{request.host}".lower(), f"https://{request.host}".lower())


def _error_page(error: str, detail: str, status: int = 400) -> web.Response:
    body = render("error.html", error=html.escape(error), detail=html.escape(detail))
    return web.Response(text=body, status=status, content_type="text/html")


def _validated_redirect(state: SandboxState, params: Any) -> tuple[str | None, str | None]:
    """(redirect_uri as given, where to redirect), or (None, None) when it is not an allowed URL."""
    given = params.get("redirect_uri") or None
    if given is None:
        return None, state.config.redirect_urls[0] if state.config.redirect_urls else None
    return (given, given) if given in state.config.redirect_urls else (None, None)


def _redirect_to(target: str, **query: str) -> web.HTTPFound:
    separator = "&" if "?" in target else "?"
    return web.HTTPFound(f"{target}{separator}{urlencode(query)}")


def _scope_list(scopes: list[str]) -> str:
    if not scopes:
        return "<p class='muted'>none</p>"
    return "<ul>" + "".join(f"<li><code>{html.escape(scope)}</code></li>" for scope in scopes) + "</ul>"


def _belongs(state: SandboxState, workspaces: tuple[str, ...], team_or_org: str) -> bool:
    """Whether a person of these workspaces belongs to this workspace, or (an org id) to a workspace of that org."""
    return any(team == team_or_org or state.teams[team].enterprise_id == team_or_org for team in workspaces)


def _install_choices(state: SandboxState, team_filter: str | None) -> str:
    """On Grid, where to install: one workspace, or the whole organisation (an org admin only), as Slack's consent
    screen for an org-ready app offers it; a link's `team` (a workspace or an org id) picks the default."""
    options = []
    for team in state.teams.values():
        if team.enterprise_id is None or not team.distributed:
            continue
        options.append((team.id, f"{team.name} (this workspace only)"))
    for org in state.enterprises.values():
        options.append((org.id, f"{org.name}: the whole organisation (org admins only; every workspace in it)"))
    chosen = team_filter if any(value == team_filter for value, _ in options) else options[0][0] if options else ""
    radios = "".join(
        f"<label class='person'><input type='radio' name='install_on' value='{html.escape(value)}'"
        f"{' checked' if value == chosen else ''}> {html.escape(label)}</label>"
        for value, label in options
    )
    return f"<section><h2>Install on</h2><div id='install-on'>{radios}</div></section>"


async def authorize_page(request: web.Request) -> web.StreamResponse:
    """GET /oauth/v2/authorize: the consent screen, or an error page when the client or redirect is wrong."""
    from sandbox.runtime import RUNTIME

    state = request.app[RUNTIME].state
    params = request.query
    if params.get("client_id") != state.config.client_id:
        return _error_page("invalid_client_id", "This link names an app the sandbox does not know.")
    _, target = _validated_redirect(state, params)
    if target is None:
        return _error_page("bad_redirect_uri", "The redirect_uri does not match any of the app's redirect URLs.")
    bot_scopes, user_scopes = split_scopes(params.get("scope")), split_scopes(params.get("user_scope"))
    if not bot_scopes and not user_scopes:
        return _error_page("invalid_scope", "The link asks for no scopes: give scope, user_scope or both.")
    team_filter = params.get("team")
    preferred = request.cookies.get("sandbox_user", "")
    with state.lock:
        people = [
            person
            for person in state.users.values()
            if not person.deleted and (not team_filter or _belongs(state, person.user.workspaces, team_filter))
        ]
        if not any(person.user.id == preferred for person in people):
            preferred = people[0].user.id if people else ""
        options = "".join(
            f"<label class='person'><input type='radio' name='user_id' value='{html.escape(person.user.id)}'"
            f"{' checked' if person.user.id == preferred else ''}> <b>{html.escape(person.user.real_name)}</b>"
            f" <span class='muted'>@{html.escape(person.user.name)} · {html.escape(state.teams[person.user.team_id].name)}"
            f"{' · admin' if person.user.is_admin else ''}</span></label>"
            for person in people
        )
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{html.escape(params.get(name, ''))}'>"
        for name in ("client_id", "scope", "user_scope", "redirect_uri", "state", "team")
    )
    hidden += f"<input type='hidden' name='consent_token' value='{consent_token(state)}'>"
    body = render(
        "authorize.html",
        install_on=_install_choices(state, team_filter) if bot_scopes and state.config.is_grid else "",
        app_name=html.escape(state.config.app_name),
        bot_scopes=_scope_list(bot_scopes),
        user_scopes=_scope_list(user_scopes),
        people=options or "<p class='muted'>No users to pick from.</p>",
        hidden=hidden,
    )
    return web.Response(text=body, content_type="text/html")


async def authorize_decision(request: web.Request) -> web.StreamResponse:
    """POST /oauth/v2/authorize: Allow redirects with a code, Cancel with error=access_denied.

    Only a press on a consent page this run served counts (its `consent_token`, and no other site's `Origin`), so
    another web page cannot mint codes by posting the form itself.
    """
    from sandbox.runtime import RUNTIME

    state = request.app[RUNTIME].state
    form = await request.post()
    params = {key: str(value) for key, value in form.items()}
    if params.get("client_id") != state.config.client_id:
        return _error_page("invalid_client_id", "This link names an app the sandbox does not know.")
    given, target = _validated_redirect(state, params)
    if target is None:
        return _error_page("bad_redirect_uri", "The redirect_uri does not match any of the app's redirect URLs.")
    if not _same_origin(request) or not valid_consent_token(state, str(form.get("consent_token", ""))):
        return _error_page(
            "invalid_consent", "This form did not come from a consent page the sandbox showed: open the link again.", 403
        )
    oauth_state = params.get("state", "")
    if params.get("action") != "allow":
        raise _redirect_to(target, error="access_denied", state=oauth_state)
    try:
        code = issue_code(
            state,
            user_id=params.get("user_id", ""),
            bot_scopes=split_scopes(params.get("scope")),
            user_scopes=split_scopes(params.get("user_scope")),
            redirect_uri=given,
            team_id=params.get("install_on") or params.get("team") or None,
        )
    except SlackError as error:
        return _error_page(error.error, CONSENT_ERRORS.get(error.error, "Pick a user before allowing."))
    raise _redirect_to(target, code=code, state=oauth_state)
