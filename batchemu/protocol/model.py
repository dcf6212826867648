"""Loads botocore's service models and indexes their operations by HTTP route or JSON target."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel


@cache
def service_model(name: str) -> ServiceModel:
    """The newest model botocore ships for service `name` (e.g. "batch", "logs")."""
    return ServiceModel(Loader().load_service_model(name, "service-2"), service_name=name)


@dataclass(frozen=True)
class Route:
    """One rest-json route with a URI label: a method, a literal prefix and the (greedy or plain) label."""

    method: str
    prefix: str
    label: str
    operation: OperationModel


class RestRouter:
    """Maps (method, path) to an operation of a rest-json service, using only the model's requestUri."""

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self._literal: dict[tuple[str, str], OperationModel] = {}
        self._labelled: list[Route] = []
        for name in model.operation_names:
            op = model.operation_model(name)
            method = op.http["method"].upper()
            uri = op.http["requestUri"].split("?", 1)[0]
            match = re.fullmatch(r"(.*?)\{(\w+)\+?\}", uri)
            if match:
                self._labelled.append(Route(method, match.group(1), match.group(2), op))
            else:
                self._literal[(method, uri.rstrip("/").lower())] = op

    def match(self, method: str, path: str) -> tuple[OperationModel, dict[str, str]] | None:
        """The operation and URI labels for a request, or None when no operation has that route."""
        op = self.literal(method, path)
        if op is not None:
            return op, {}
        for route in self._labelled:
            if route.method == method and path.startswith(route.prefix) and len(path) > len(route.prefix):
                return route.operation, {route.label: path[len(route.prefix):]}
        return None

    def literal(self, method: str, path: str) -> OperationModel | None:
        """The operation on a route without URI labels, or None."""
        return self._literal.get((method, path.rstrip("/").lower()))

    def allowed_methods(self, path: str) -> set[str]:
        """Methods some operation accepts on `path` (for 405 answers)."""
        found = {m for (m, uri) in self._literal if uri == path.rstrip("/").lower()}
        found |= {r.method for r in self._labelled if path.startswith(r.prefix) and len(path) > len(r.prefix)}
        return found
