"""Where a training job's URIs and folders are on the host (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchemu.config import Config
from batchemu.errors import ClientException
from batchemu.model import training


def test_s3_uris_resolve_by_longest_whole_prefix_else_under_the_training_dir(tmp_path):
    config = Config(state=":memory:", training_dir=str(tmp_path),
                    s3_map={"s3://bucket": "/srv/all", "s3://bucket/deep/": "/srv/deep"})
    assert training.local_path("s3://bucket/a/b", config) == Path("/srv/all/a/b")
    assert training.local_path("s3://bucket/deep/x", config) == Path("/srv/deep/x")
    assert training.local_path("s3://bucket", config) == Path("/srv/all")
    assert training.local_path("s3://bucket2/x", config) == tmp_path / "s3" / "bucket2" / "x"
    assert training.local_path("file:///data/train", config) == Path("/data/train")
    with pytest.raises(training.TrainingError, match="neither an s3:// nor a file:// URI"):
        training.local_path("https://example.com/x", config)


def test_model_folder_follows_the_output_path(tmp_path):
    config = Config(state=":memory:", training_dir=str(tmp_path), s3_map={"s3://b": "/srv/b"})
    assert training.output_dir(config, {"TrainingJobName": "tj", "OutputDataConfig": {"S3OutputPath": "s3://b/m"}}) \
        == Path("/srv/b/m/tj/output")
    assert training.output_dir(config, {"TrainingJobName": "tj"}) == tmp_path / "models" / "tj" / "output"


def test_payload_rules_and_what_sagemaker_would_refuse():
    with pytest.raises(ClientException, match="not valid JSON"):
        training.parse_payload("{")
    valid = {"TrainingJobName": "tj-1", "AlgorithmSpecification": {"TrainingImage": "img"},
             "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2}, "StoppingCondition": {}}
    assert training.validation_error(valid) is None
    assert training.instances(valid) == (2, "ml.m5.large")
    assert "at 'trainingJobName' failed to satisfy constraint: Member must satisfy regular expression" in \
        training.validation_error({**valid, "TrainingJobName": "bad_name"})
    assert training.validation_error({**valid, "ResourceConfig": {"InstanceType": "ml.m5.large",
                                                                  "InstanceCount": 0}}).endswith(
        "Member must have value greater than or equal to 1")
    assert training.validation_error({k: v for k, v in valid.items() if k != "StoppingCondition"}) == (
        "ValidationException: 1 validation error detected: Value null at 'stoppingCondition' failed to satisfy "
        "constraint: Member must not be null")
