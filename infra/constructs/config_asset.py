"""The deployment's YAML configuration: validated at synth, shipped as an S3 asset, read at cold start."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from chalicelib.config.loader import load_config
from chalicelib.config.models import Config


class DeploymentConfig(Construct):
    """Refuses to synthesise an invalid config (raising the loader's ConfigError, which names every
    field at fault), so a typo fails `cdk deploy` instead of every Lambda cold start."""

    def __init__(self, scope: Construct, construct_id: str, *, config_file: Path) -> None:
        super().__init__(scope, construct_id)
        self.config: Config = load_config(str(config_file))
        # An asset, not a bucket of our own: a changed file gets a new key, which changes the
        # functions' BANDITORE_CONFIG and so starts fresh Lambda environments that read it.
        self._asset = s3_assets.Asset(self, "File", path=str(config_file))

    @property
    def uri(self) -> str:
        """s3://bucket/key, the form chalicelib.config.loader reads."""
        return self._asset.s3_object_url

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        # Asset.grant_read would open the whole CDK staging bucket (every app's code in the
        # account); the functions need this one object.
        return self._asset.bucket.grant_read(grantee, self._asset.s3_object_key)
