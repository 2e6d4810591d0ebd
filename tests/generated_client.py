"""Drives a live Dravo through a Python client generated from openapi/dravo.json.

Run by tests/api/generated_client.rs as: python generated_client.py BASE_URL TOKEN SPARSE_ID FULL_ID
(SPARSE_ID: an account whose nullable fields are all null; FULL_ID: one with every field set).
Each step asserts on the parsed models, so a spec that says something the server does not do
(a missing `nullable`, a wrong format or pattern, an undeclared status) fails here.
"""

import datetime
import re
import sys

from dravo_client import AuthenticatedClient, Client
from dravo_client.api.accounts import get_account, list_accounts
from dravo_client.api.health import health
from dravo_client.api.o_auth_apps import (
    check_o_auth_app,
    create_o_auth_app,
    delete_o_auth_app,
    get_o_auth_app,
    list_o_auth_apps,
)
from dravo_client.models import (
    Account,
    CreateOAuthApp,
    CreateOAuthAppProvider,
    ErrorBody,
    ErrorCode,
    HealthStatus,
    ListOAuthAppsProvider,
    OAuthApp,
    OAuthAppCheck,
)
from dravo_client.types import Unset

base_url, token, sparse_id, full_id = sys.argv[1:5]
client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)

assert health.sync(client=anonymous).status == HealthStatus.OK

# Apps: create, list (filtered too), get, delete.
created = create_o_auth_app.sync_detailed(
    client=client,
    body=CreateOAuthApp(
        provider=CreateOAuthAppProvider.X,
        name="Generated client app",
        client_id="generated-client-id",
        client_secret="generated-client-secret",
    ),
)
assert created.status_code == 201, created
app = created.parsed
assert isinstance(app, OAuthApp), app
assert re.fullmatch(r"oa_[a-z2-7]{20}", app.id), app.id
assert isinstance(app.created_at, datetime.datetime), app.created_at
assert app.redirect_uri == f"{base_url}/v1/oauth/x/callback", app.redirect_uri
assert created.headers["location"] == f"/v1/oauth-apps/{app.id}"

apps = list_o_auth_apps.sync(client=client)
assert [a.id for a in apps] == [app.id], apps
assert list_o_auth_apps.sync(client=client, provider=ListOAuthAppsProvider.LINKEDIN) == []
got = get_o_auth_app.sync(client=client, id=app.id)
assert got.name == "Generated client app" and got.created_at == app.created_at, got

# A check: null until the first one, then the stored result (the `oneOf` + `nullable` field).
assert got.last_check is None and not isinstance(got.last_check, Unset), got.last_check
checked = check_o_auth_app.sync(client=client, id=app.id)
assert isinstance(checked, OAuthAppCheck), checked
assert isinstance(checked.checked_at, datetime.datetime), checked.checked_at
assert checked.outcome == "unknown" and checked.source == "check", checked
assert [c.name for c in checked.checks] == [
    "client_credentials",
    "redirect_uri",
    "scopes",
    "public_url_reachable",
], checked.checks
assert [c.status for c in checked.checks] == ["unknown", "ok", "ok", "ok"], checked.checks
again = get_o_auth_app.sync(client=client, id=app.id)
assert isinstance(again.last_check, OAuthAppCheck), again.last_check
assert again.last_check.checked_at == checked.checked_at, again.last_check

duplicate = create_o_auth_app.sync_detailed(
    client=client,
    body=CreateOAuthApp(
        provider=CreateOAuthAppProvider.X,
        name="Generated client app",
        client_id="again",
        client_secret="again",
    ),
)
assert duplicate.status_code == 409, duplicate
assert duplicate.parsed.error.code == ErrorCode.CONFLICT, duplicate.parsed

assert delete_o_auth_app.sync_detailed(client=client, id=app.id).status_code == 204
missing = get_o_auth_app.sync_detailed(client=client, id=app.id)
assert missing.status_code == 404, missing
assert isinstance(missing.parsed, ErrorBody), missing.parsed
assert missing.parsed.error.code == ErrorCode.NOT_FOUND, missing.parsed

# Accounts: nulls parse as None, times as datetimes.
page = list_accounts.sync(client=client)
assert page.next_cursor is None, page
accounts = {a.id: a for a in page.data}
assert set(accounts) == {sparse_id, full_id}, accounts
sparse = get_account.sync(client=client, id=sparse_id)
assert isinstance(sparse, Account), sparse
for field in ("oauth_app_id", "username", "display_name", "expires_at"):
    value = getattr(sparse, field)
    assert value is None and not isinstance(value, Unset), (field, value)
full = accounts[full_id]
assert re.fullmatch(r"oa_[a-z2-7]{20}", full.oauth_app_id), full.oauth_app_id
assert full.username == "generated" and full.display_name == "Generated Client", full
assert full.expires_at == datetime.datetime(2026, 1, 1, 2, tzinfo=datetime.timezone.utc), full
assert full.created_at == datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc), full

# Errors parse as the error body, 401 included.
unauthorized = list_accounts.sync_detailed(client=AuthenticatedClient(base_url=base_url, token="nope"))
assert unauthorized.status_code == 401, unauthorized
assert unauthorized.parsed.error.code == ErrorCode.UNAUTHORIZED, unauthorized.parsed

print("generated client: ok")
