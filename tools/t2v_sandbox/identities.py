"""Who may call the sandbox's API: named key pairs, each an IAM user of the sandbox's account.

API Gateway maps a verified SigV4 signature to the caller's IAM ARN (`requestContext.identity.userArn`),
and the API derives a job's owner from it. The sandbox plays that with a few fixed identities, so
that tenancy (a caller sees only its own jobs), fair share between callers and per-caller limits run
end to end on one machine. `default` is the sandbox's one user of old (moto's `testing` keys, user
`sandbox`): with no identity chosen everything behaves as before. `admin` is in `AdminPrincipals`.
Every key here is fake and works only against the sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

SANDBOX_ACCOUNT: Final = "123456789012"
DEFAULT_IDENTITY: Final = "default"


@dataclass(frozen=True)
class Identity:
    name: str  # what `t2v --as NAME` and the console's picker call it
    user: str  # the IAM user's name in the ARN
    access_key: str
    secret_key: str
    admin: bool = False

    @property
    def user_arn(self) -> str:
        return f"arn:aws:iam::{SANDBOX_ACCOUNT}:user/{self.user}"

    def endpoint_entry(self) -> dict[str, Any]:
        """How endpoints.json lists it (the client and the console read these)."""
        return {
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "user_arn": self.user_arn,
            "admin": self.admin,
        }


IDENTITIES: Final = (
    # moto's own fake credentials, as the sandbox always signed with them.
    Identity(DEFAULT_IDENTITY, "sandbox", "testing", "testing"),
    Identity("alice", "alice", "AKIASANDBOXALICE0001", "sandbox-alice-secret"),
    Identity("bob", "bob", "AKIASANDBOXBOB000001", "sandbox-bob-secret"),
    Identity("admin", "admin", "AKIASANDBOXADMIN0001", "sandbox-admin-secret", admin=True),
)
BY_NAME: Final = {identity.name: identity for identity in IDENTITIES}
DEFAULT: Final = BY_NAME[DEFAULT_IDENTITY]
SANDBOX_USER_ARN: Final = DEFAULT.user_arn


def signing_keys() -> dict[str, str]:
    """Access key id -> secret: every key pair the API front accepts."""
    return {identity.access_key: identity.secret_key for identity in IDENTITIES}


def principals() -> dict[str, str]:
    """Access key id -> the IAM user ARN API Gateway would put in `requestContext.identity.userArn`."""
    return {identity.access_key: identity.user_arn for identity in IDENTITIES}


def admin_principals() -> str:
    """The sandbox's `AdminPrincipals` (CommaDelimitedList) when no override sets it."""
    return ",".join(identity.user_arn for identity in IDENTITIES if identity.admin)


def identity(name: str) -> Identity:
    """The identity called `name`; KeyError naming the known ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        known = ", ".join(BY_NAME)
        raise KeyError(f"no sandbox identity {name!r}; known: {known}") from None
