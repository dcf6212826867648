"""The model-driven fuzzer (tests/fuzz.py) with a fixed seed: no 5xx, JSON errors, nothing lost.
`make fuzz SEED=... N=...` runs the same for longer."""

from __future__ import annotations

import random

from tests import fuzz

SEED = 20250810
REQUESTS = 4000


def test_fuzzed_requests_never_answer_a_server_error_and_lose_nothing():
    report, lost = fuzz.fuzz_fresh_server(SEED, REQUESTS)
    assert not report.problems, report.summary()
    assert not lost, lost
    assert report.sent >= REQUESTS * 0.99
    # The run covered what it claims: valid requests, each defect, garbage, and every operation.
    assert report.kinds["valid"] and report.kinds["defect"] and report.kinds["garbage"]
    assert report.statuses[200] and report.statuses[400]


def test_generator_reaches_every_operation_and_every_defect():
    generator = fuzz.Generator(random.Random(SEED))
    cases = list(generator.cases(REQUESTS))
    assert {case.operation for case in cases if case.kind == "valid"} == set(fuzz.OPERATIONS)
    assert {case.kind.split(":")[1] for case in cases if case.kind.startswith("defect:")} == set(fuzz.DEFECTS)


def test_valid_generated_requests_pass_validation():
    """Without a defect a generated request is valid for its input shape, so defects are the only fault."""
    from batchemu.protocol.parser import validate
    generator = fuzz.Generator(random.Random(SEED))
    for name in fuzz.OPERATIONS:
        op = fuzz.MODEL.operation_model(name)
        if op.input_shape is not None:
            for _ in range(5):
                validate(op.input_shape, generator.value(op.input_shape), name)


def test_problem_flags_5xx_and_non_json_errors():
    case = fuzz.Case("valid", "SubmitJob", "POST", "/v1/submitjob")
    json_error = {"content-type": "application/json", "x-amzn-errortype": "ServerException"}
    assert fuzz.problem(case, fuzz.Answer(500, json_error, b'{"__type": "ServerException", "message": "x"}'))
    assert fuzz.problem(case, fuzz.Answer(400, {}, b"Bad Request"))
    assert fuzz.problem(case, fuzz.Answer(501, {"x-amzn-errortype": "NotImplemented"},
                                          b'{"__type": "NotImplemented", "message": "SubmitJob is not built"}'))
    # A documented not-built feature of a built operation may answer 501 (every operation is built now).
    assert fuzz.problem(case, fuzz.Answer(501, {"x-amzn-errortype": "NotImplemented"},
                                          b'{"__type": "NotImplemented", "message": "SubmitJob with nodeOverrides '
                                          b'is not built"}')) is None
    assert fuzz.problem(case, fuzz.Answer(400, {"x-amzn-errortype": "ClientException"},
                                          b'{"__type": "ClientException", "message": "bad"}')) is None
