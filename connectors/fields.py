"""Model fields shared by connector records.

``EncryptedTextField`` keeps credentials (client secrets, private keys) encrypted at rest with
Fernet (AES-128-CBC + HMAC-SHA256). The key is derived from ``settings.FIELD_ENCRYPTION_KEY``; to
rotate, set it to ``new-key,old-key``: the first key encrypts, every listed key decrypts.
"""

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class SecretDecryptionError(ImproperlyConfigured):
    """A stored secret can't be decrypted: FIELD_ENCRYPTION_KEY changed without keeping the old key."""


def _fernet_key(secret: str) -> bytes:
    # HKDF turns any configured string (often SECRET_KEY) into the 32 bytes Fernet needs.
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"quorum-field-encryption", info=b"fernet").derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(derived)


@lru_cache(maxsize=4)
def _fernet_for(configured: str) -> MultiFernet:
    keys = [k.strip() for k in configured.split(",") if k.strip()]
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEY is empty: stored credentials can't be encrypted.")
    return MultiFernet([Fernet(_fernet_key(k)) for k in keys])


def get_fernet() -> MultiFernet:
    return _fernet_for(settings.FIELD_ENCRYPTION_KEY)


def encrypt_text(plaintext: str) -> str:
    return get_fernet().encrypt(plaintext.encode()).decode("ascii")


def decrypt_text(token: str) -> str:
    try:
        return get_fernet().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeEncodeError) as error:
        raise SecretDecryptionError(
            "A stored credential can't be decrypted with FIELD_ENCRYPTION_KEY. If the key changed, list the "
            "old key after the new one (FIELD_ENCRYPTION_KEY=new,old), or enter the credential again."
        ) from error


class EncryptedTextField(models.TextField):
    """Text stored encrypted; Python code sees the plaintext.

    The empty string stays empty (no secret). Encryption is randomised, so the column can't be
    filtered on: ``filter(secret=…)`` will never match.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt_text(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_text(value)

    def value_to_string(self, obj):
        # Serialisation (dumpdata) must never write the plaintext out.
        return ""
