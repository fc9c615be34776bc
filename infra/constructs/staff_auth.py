"""The staff's sign-in: a Cognito user pool, the staff web app's client, one group per tenant.

API Gateway checks the ID token of every /inbox request against this pool: app.py attaches a Cognito
authorizer to each /inbox route when BANDITORE_STAFF_USER_POOL_ARN names a pool, and the stack sets
it to `user_pool_arn` for synth. A user's `tenant-{id}` groups are the tenants they act for
(chalicelib/inbox/auth.py). An administrator creates staff accounts (nobody signs up) and adds each
to the groups of their tenants; the groups follow the deployed configuration.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from aws_cdk import Aws, CfnOutput, CfnResource, Duration, Fn, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from chalicelib.inbox.auth import UNAUTHENTICATED_MESSAGE, WWW_AUTHENTICATE, group_name

# Where the staff web app receives the sign-in code. Until it is deployed and its URL configured
# (BANDITORE_STAFF_CALLBACK_URL), a sign-in can only come back to the operator's own machine.
DEFAULT_CALLBACK_URL = "http://localhost:3000/"
MIN_PASSWORD_LENGTH = 12


class StaffAuth(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        tenants: Iterable[str],
        callback_url: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.user_pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True, email=True),
            sign_in_case_sensitive=False,
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            # An authenticator app, never SMS (SIM swapping; and no SMS role or spend to manage).
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(
                min_length=MIN_PASSWORD_LENGTH,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.ESSENTIALS,
            # The staff's accounts outlive any stack update gone wrong.
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The hosted sign-in pages (needed by the authorization code flow); the account id keeps
        # the prefix unique in the region, as Cognito requires.
        self.domain = self.user_pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(
                domain_prefix=Fn.join("-", ["banditore-staff", Aws.ACCOUNT_ID])
            ),
        )
        # A browser app keeps no secret: authorization code with PKCE, no implicit grant, and no
        # password sent in the clear (SRP only).
        self.web_client = self.user_pool.add_client(
            "StaffWebApp",
            generate_secret=False,
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=[callback_url or DEFAULT_CALLBACK_URL],
                logout_urls=[callback_url or DEFAULT_CALLBACK_URL],
            ),
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.hours(10),  # a working day, then sign in again
        )
        for tenant in tenants:
            self.user_pool.add_group(
                f"Group-{tenant}", group_name=group_name(tenant), description=f"Staff of {tenant}"
            )
        CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id, description="Staff user pool")
        CfnOutput(self, "WebClientId", value=self.web_client.user_pool_client_id, description="Staff web app")
        CfnOutput(self, "SignInUrl", value=self.domain.base_url(), description="Staff sign-in (hosted pages)")

    @property
    def user_pool_arn(self) -> str:
        return self.user_pool.user_pool_arn

    @staticmethod
    def answer_unauthenticated_as_the_api_does(rest_api: CfnResource, origin: str | None = None) -> None:
        """API Gateway refuses a missing or bad token itself, before the function runs: make its 401
        the API's own (error shape, WWW-Authenticate, no-store), as openapi/inbox.yaml says. In the
        API definition, so the deployment that carries the authorizer carries this too. With the
        staff app's `origin` (CORS) it carries that origin as the routes do, or the browser would
        hide the 401 from the app, which then could not tell an expired sign-in from a network error."""
        cors = {"gatewayresponse.header.Access-Control-Allow-Origin": f"'{origin}'"} if origin else {}
        rest_api.add_property_override(
            "DefinitionBody.x-amazon-apigateway-gateway-responses",
            {
                "UNAUTHORIZED": {
                    "statusCode": "401",
                    "responseParameters": {
                        "gatewayresponse.header.WWW-Authenticate": f"'{WWW_AUTHENTICATE}'",
                        "gatewayresponse.header.Cache-Control": "'no-store'",
                        **cors,
                    },
                    "responseTemplates": {"application/json": json.dumps({"error": UNAUTHENTICATED_MESSAGE})},
                }
            },
        )
