"""CloudFormation intrinsic functions, conditions and dependency discovery for the sandbox deployer."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

_SUB_VAR = re.compile(r"\$\{([^}]+)\}")


class IntrinsicError(Exception):
    """A reference or function the resolver cannot evaluate; the message says which."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class Resolver:
    """Evaluates intrinsics against parameters, pseudo parameters, conditions and created resources."""

    def __init__(
        self,
        template: dict[str, Any],
        parameters: dict[str, Any],
        pseudo: dict[str, Any],
        get_att: Callable[[str, str], Any],
    ) -> None:
        self.template = template
        self.parameters = parameters
        self.pseudo = pseudo
        self.refs: dict[str, Any] = {}
        self._get_att = get_att
        self._conditions: dict[str, bool] = {}
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._getatt,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
            "Fn::Equals": lambda args: self.resolve(args[0]) == self.resolve(args[1]),
            "Fn::Not": lambda args: not self.resolve(args[0]),
            "Fn::And": lambda args: all(self.resolve(a) for a in args),
            "Fn::Or": lambda args: any(self.resolve(a) for a in args),
            "Condition": self.condition,
            "Fn::FindInMap": self._find_in_map,
            "Fn::GetAZs": lambda _: [f"{self.pseudo['AWS::Region']}{z}" for z in "abc"],
            "Fn::Base64": lambda arg: base64.b64encode(str(self.resolve(arg)).encode()).decode(),
            "Fn::ToJsonString": lambda arg: json.dumps(self.resolve(arg), separators=(",", ":")),
        }

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {})
            if name not in conditions:
                raise IntrinsicError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key in self._functions:
                    return self._functions[key](arg)
                if key.startswith("Fn::"):
                    raise IntrinsicError(f"intrinsic {key} is not supported by the sandbox")
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
        return value

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise IntrinsicError(f"Ref to {name!r}: not a parameter or a created resource")

    def _getatt(self, arg: Any) -> Any:
        logical_id, attribute = (arg.split(".", 1) if isinstance(arg, str) else arg)[:2]
        return self._get_att(logical_id, str(self.resolve(attribute)))

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and name not in self.parameters:
                value = self._getatt(name)
            else:
                value = self._ref(name)
            return (
                value
                if isinstance(value, str)
                else json.dumps(value)
                if isinstance(value, dict)
                else str(value)
            )

        return _SUB_VAR.sub(replace, text)

    def _join(self, args: list[Any]) -> str:
        delimiter, items = args
        return str(delimiter).join(str(v) for v in self.resolve(items))

    def _select(self, args: list[Any]) -> Any:
        return self.resolve(args[1])[int(self.resolve(args[0]))]

    def _split(self, args: list[Any]) -> list[str]:
        return str(self.resolve(args[1])).split(args[0])

    def _if(self, args: list[Any]) -> Any:
        # Only the chosen branch is evaluated: the other may reference resources that do not exist.
        name, when_true, when_false = args
        return self.resolve(when_true if self.condition(name) else when_false)

    def _find_in_map(self, args: list[Any]) -> Any:
        name, first, second = (self.resolve(a) for a in args[:3])
        try:
            return self.template["Mappings"][name][first][second]
        except KeyError as exc:
            raise IntrinsicError(f"Fn::FindInMap {name}/{first}/{second}: no such entry") from exc


def _sub_names(arg: Any) -> Iterator[str]:
    text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
    if not isinstance(text, str):
        return
    for match in _SUB_VAR.finditer(text):
        name = match.group(1)
        if not name.startswith("!") and name not in variables:
            yield name.split(".", 1)[0]
    if isinstance(variables, dict):
        for value in variables.values():
            yield from referenced_names(value)


def referenced_names(value: Any) -> Iterator[str]:
    """Every name a value references with Ref, Fn::GetAtt or Fn::Sub (resources and parameters alike)."""
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                yield arg
            elif key == "Fn::GetAtt":
                yield (arg.split(".", 1) if isinstance(arg, str) else arg)[0]
            elif key == "Fn::Sub":
                yield from _sub_names(arg)
            else:
                yield from referenced_names(arg)
    elif isinstance(value, list):
        for item in value:
            yield from referenced_names(item)


def creation_order(resources: dict[str, dict[str, Any]]) -> list[str]:
    """Topological order over Ref/GetAtt/Sub/DependsOn edges; a cycle is an error naming its members."""
    deps: dict[str, set[str]] = {}
    for logical_id, res in resources.items():
        depends_on = res.get("DependsOn", [])
        names = set(referenced_names(res.get("Properties", {})))
        names |= {depends_on} if isinstance(depends_on, str) else set(depends_on)
        deps[logical_id] = {n for n in names if n in resources and n != logical_id}
    order: list[str] = []
    ready = sorted(lid for lid, d in deps.items() if not d)
    while ready:
        current = ready.pop(0)
        order.append(current)
        for lid in sorted(deps):
            if current in deps[lid]:
                deps[lid].discard(current)
                if not deps[lid] and lid not in order and lid not in ready:
                    ready.append(lid)
    if len(order) != len(resources):
        raise IntrinsicError(
            "circular dependency (each resource needs the next; CloudFormation rejects it too): "
            + " -> ".join(_a_cycle(deps))
        )
    return order


def _a_cycle(deps: dict[str, set[str]]) -> list[str]:
    """One dependency cycle among the resources left unordered, to name it in the error."""
    start = next(lid for lid in sorted(deps) if deps[lid])
    path = [start]
    while True:
        nxt = sorted(deps[path[-1]])[0]
        if nxt in path:
            return [*path[path.index(nxt) :], nxt]
        path.append(nxt)
