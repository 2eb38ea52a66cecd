from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from cdp.models import ApiToken
from cdp.models.tokens import hash_token_key


def issue_api_token(*, user, name: str, created_by) -> tuple[ApiToken, str]:
    """Create a token and return it with its key. The key is not stored and can't be shown again."""
    key = ApiToken.generate_key()
    token = ApiToken.objects.create(
        user=user, name=name, key_hash=hash_token_key(key), key_prefix=key[:10], created_by=created_by
    )
    return token, key


def revoke_api_token(token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def authenticate_api_token(key: str):
    """The active user owning this active key, or None. Records when the token was last used.

    One plain-SQL query for the token and its user: every API request asks this, and compiling the
    ORM equivalent cost several times the CPU of running it."""
    User = get_user_model()
    # Write at most once a minute per token: the API's hot path should not write on every call.
    stale_before = timezone.now() - timedelta(seconds=60)
    stale_param = ApiToken._meta.get_field("last_used_at").get_db_prep_value(stale_before, connection)
    sql = (
        f"SELECT u.*, t.id AS token_id, (t.last_used_at IS NULL OR t.last_used_at < %s) AS token_stale "
        f"FROM {User._meta.db_table} u JOIN {ApiToken._meta.db_table} t ON t.user_id = u.{User._meta.pk.column} "
        "WHERE t.key_hash = %s AND t.revoked_at IS NULL"  # ApiToken.objects.active()
    )
    user = next(iter(User.objects.raw(sql, [stale_param, hash_token_key(key)])), None)
    if user is None or not user.is_active:
        return None
    if user.token_stale:
        ApiToken.objects.filter(pk=user.token_id).update(last_used_at=timezone.now())
    return user
