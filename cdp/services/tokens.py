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
    """The active user owning this key, or None. Records when the token was last used."""
    token = ApiToken.objects.active().select_related("user").filter(key_hash=hash_token_key(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    # Write at most once a minute per token: the API's hot path should not write on every call.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
