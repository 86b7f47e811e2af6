import hashlib

import msgspec
import pytest

from fax_api.accounts.rows import AccountUser
from fax_api.accounts.rules import (
    UserValidationError,
    credentials_hashes,
    hash_password,
    new_api_key,
    user_view,
    validate_user,
    verify_password,
)


def test_password_hash_is_salted_scrypt_and_verifies() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("scrypt$") and first != second
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("wrong horse", first)
    assert not verify_password("correct horse", "md5$whatever")


def test_credentials_are_kazoos_md5_and_sha1_of_lowercased_username() -> None:
    md5, sha1 = credentials_hashes("John@Example.com", "m32c6NfqYEt")
    # The example of Kazoo's user_authentication docs.
    assert md5 == "82a2dc91686ec828a67152d45a5c5ef7"
    assert sha1 == hashlib.sha1(b"john@example.com:m32c6NfqYEt").hexdigest()


def test_api_key_has_kazoos_shape() -> None:
    key = new_api_key()
    assert len(key) == 64 and int(key, 16) >= 0 and key != new_api_key()


def test_user_validation_names_every_field() -> None:
    with pytest.raises(UserValidationError) as caught:
        validate_user(
            {"username": "has space", "password": "short", "email": "nope", "first_name": 3}, password_required=True
        )
    assert set(caught.value.errors) == {"username", "password", "email", "first_name"}
    user = validate_user({"username": "Alice", "password": "long enough"}, password_required=True)
    assert user["username"] == "alice"
    assert validate_user({"username": "alice"}, password_required=False)["password"] is None


def test_user_view_has_no_password_in_any_form() -> None:
    row = {
        "id": "u",
        "username": "a",
        "email": "",
        "first_name": "",
        "last_name": "",
        "password_scrypt": "s",
        "md5_credentials": "m",
        "sha1_credentials": "h",
        "account_id": "x",
        "revision": 1,
    }
    assert set(user_view(msgspec.convert(row, AccountUser))) == {"id", "username", "email", "first_name", "last_name"}
