"""Read access to exactly the secrets the configuration references, and to nothing else.

Channel tokens are `ssm:/path`, `secretsmanager:name` or `env:VAR` references (chalicelib.config.models
SecretRef). The stack grants `ssm:GetParameter(s)` on each referenced parameter and
`secretsmanager:GetSecretValue` on each referenced secret, never a wildcard over the account.

No kms:Decrypt is granted: SecureString parameters and secrets encrypted with the AWS managed keys
(aws/ssm, aws/secretsmanager) are decrypted through the service, and those keys' policies already
allow every principal of the account. A customer managed key would need kms:Decrypt on that key
with a kms:ViaService condition; add it here if an operator ever uses one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from pydantic import BaseModel

from chalicelib.config.models import Config, is_secret_ref


def secret_references(config: Config) -> tuple[str, ...]:
    """Every ssm: and secretsmanager: reference in the config, each once, sorted."""
    return tuple(sorted({ref for ref in _secret_ref_values(config) if not ref.startswith("env:")}))


def _secret_ref_values(node: object) -> Iterator[str]:
    if isinstance(node, BaseModel):
        for name, field in type(node).model_fields.items():
            value = getattr(node, name)
            if is_secret_ref(field):
                yield from [value] if isinstance(value, str) else value or []
            else:
                yield from _secret_ref_values(value)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _secret_ref_values(item)


def _parameter_arn(stack: Stack, name: str) -> str:
    # Parameter names start with "/", which the ARN drops: ...:parameter/banditore/token
    return stack.format_arn(
        service="ssm",
        resource="parameter",
        resource_name=name.removeprefix("/"),
        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
    )


def _secret_arn(stack: Stack, name: str) -> str:
    # Secrets Manager appends "-" and six random characters to the name in every secret's ARN.
    return stack.format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name=f"{name}-??????",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


@dataclass(frozen=True)
class _Store:
    scheme: str
    actions: tuple[str, ...]
    arn: Callable[[Stack, str], str]


# Powertools reads one parameter with GetParameter and several with GetParameters.
_STORES = (
    _Store("ssm:", ("ssm:GetParameter", "ssm:GetParameters"), _parameter_arn),
    _Store("secretsmanager:", ("secretsmanager:GetSecretValue",), _secret_arn),
)


def grant_secret_reads(role: iam.IRole, config: Config) -> list[iam.Grant]:
    refs = secret_references(config)
    stack = Stack.of(role)
    grants = []
    for store in _STORES:
        names = [ref.removeprefix(store.scheme) for ref in refs if ref.startswith(store.scheme)]
        if names:
            grants.append(
                iam.Grant.add_to_principal(
                    grantee=role,
                    actions=list(store.actions),
                    resource_arns=[store.arn(stack, name) for name in names],
                )
            )
    return grants
