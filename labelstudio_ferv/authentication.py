"""API token authentication in one plain query (the hot path's every request starts here).

DRF's ``TokenAuthentication`` builds an ORM query with ``select_related`` for every request;
compiling it costs more CPU than PostgreSQL spends answering it. This does the same lookup
(token and user in one join, nothing cached between requests: a deleted token or a deactivated
user is refused on the very next request) with SQL written once per process.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

_query: tuple[str, list[str], list[str]] | None = None


def _token_query() -> tuple[str, list[str], list[str]]:
    """Return the SQL, the user's and the token's column names (built once)."""
    global _query
    if _query is None:
        user = get_user_model()._meta
        token = Token._meta
        qn = connection.ops.quote_name
        user_cols = [f.column for f in user.concrete_fields]
        token_cols = [f.column for f in token.concrete_fields]
        select = [f"u.{qn(c)}" for c in user_cols] + [f"t.{qn(c)}" for c in token_cols]
        user_fk = token.get_field("user").column
        sql = (
            f"SELECT {', '.join(select)} FROM {qn(token.db_table)} t "  # noqa: S608 (model names)
            f"JOIN {qn(user.db_table)} u ON u.{qn(user.pk.column)} = t.{qn(user_fk)} "
            f"WHERE t.{qn(token.pk.column)} = %s"
        )
        _query = (
            sql,
            [f.attname for f in user.concrete_fields],
            [f.attname for f in token.concrete_fields],
        )
    return _query


class FastTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, exactly as DRF's, with the lookup in plain SQL."""

    def authenticate_credentials(self, key):
        sql, user_names, token_names = _token_query()
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        n = len(user_names)
        user = get_user_model().from_db(connection.alias, user_names, list(row[:n]))
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        token = Token.from_db(connection.alias, token_names, list(row[n:]))
        token.user = user
        return user, token
