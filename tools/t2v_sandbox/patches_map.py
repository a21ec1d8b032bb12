"""Distributed Map features of AWS Step Functions that moto 5.2.5's ASL interpreter lacks.

moto runs state machines with its port of LocalStack's ANTLR-based interpreter
(`moto.stepfunctions.parser`). Its grammar and components stop short of two things the batch state
machine uses, and it rejects such a definition (InvalidDefinition) or fails the execution:

* `ItemReader.ReaderConfig.InputType: "JSONL"` (`_patch_jsonl_reader`);
* `ItemBatcher` on a Distributed Map (`_patch_item_batcher`);
* a Task on `arn:aws:states:::states:startExecution` (and `.sync`, `.sync:2`), which a Distributed
  Map's child uses to run one execution per item (`_patch_sfn_service_task`).

Unlike the patches of `t2v_sandbox.patches`, these need no running sandbox (`Runtime`): they only
add AWS behaviour moto does not have, and leave every definition that uses neither feature exactly as
moto shipped it. What DescribeStateMachine returns is the definition as created: only the copy moto
parses is rewritten. They replace moto's private names, so they rely on `patches.MOTO_VERSION`
(`patches.install()` checks it before calling `install()` here).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

_install_lock = threading.Lock()
_installed = False

# Where a compiled ItemBatcher is kept: on the parsed Map state's iteration component, an object each
# parse creates afresh (moto parses the definition again for every execution).
_BATCHER_ATTR: Final = "_t2v_item_batcher"
# Marks an InputType declared as JSONL (moto's InputTypeValue enum only knows CSV and JSON).
_JSONL_ATTR: Final = "_t2v_jsonl"
_JSONL: Final = "JSONL"
# AWS caps a child workflow's input, hence a batch, at 256 KiB.
_MAX_BATCH_BYTES: Final = 262_144


def install() -> None:
    """Install both patches (idempotent). The caller has checked moto's version."""
    global _installed  # noqa: PLW0603 - process-wide, like the moto classes being patched
    with _install_lock:
        if _installed:
            return
        _patch_jsonl_reader()
        _patch_item_batcher()
        _patch_sfn_service_task()
        _installed = True


# --- ItemReader over JSON Lines ----------------------------------------------------------------------
def _patch_jsonl_reader() -> None:
    """AWS reads an S3 object given `"ReaderConfig": {"InputType": "JSONL"}` as JSON Lines: each
    non-blank line is one item (any JSON value), `MaxItems` keeps the first N, and a line that is not
    JSON fails the Map state with `States.ItemReaderFailed`. moto's `InputType` raises ValueError on
    "JSONL" (so CreateStateMachine answers InvalidDefinition) and has no transformer for it.

    `InputType.__init__` now records JSONL as JSON plus a mark, and the transformer factory that
    `ItemReader.__init__` calls (`item_reader_decl.resource_output_transformer_for`) returns the JSON
    Lines transformer for a marked InputType; CSV and JSON get moto's own transformers.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader import item_reader_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.reader_config import (
        input_type as input_type_module,
    )

    original_init = input_type_module.InputType.__init__
    original_factory = item_reader_decl.resource_output_transformer_for  # type: ignore[attr-defined]
    transformer_class = _jsonl_transformer_class()

    def input_type_init(self: Any, input_type: str) -> None:
        if input_type != _JSONL:
            original_init(self, input_type)
            return
        self.input_type_value = input_type_module.InputTypeValue.JSON
        setattr(self, _JSONL_ATTR, True)

    def resource_output_transformer_for(input_type: Any) -> Any:
        if getattr(input_type, _JSONL_ATTR, False):
            return transformer_class()
        return original_factory(input_type=input_type)

    input_type_module.InputType.__init__ = input_type_init  # type: ignore[method-assign]
    item_reader_decl.resource_output_transformer_for = resource_output_transformer_for  # type: ignore[attr-defined]


def _map_run_failure(env: Any, cause: str, error: str = "StatesItemReaderFailed") -> Exception:
    """The failure moto's own transformers raise for an unreadable source (States.ItemReaderFailed),
    or with another `StatesErrorNameType` member's name as `error`."""
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    error_name = StatesErrorName(typ=getattr(StatesErrorNameType, error))
    failure_event = FailureEvent(
        env=env,
        error_name=error_name,
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(  # type: ignore[typeddict-item]  # moto's TypedDict is total; moto fills one key too
            mapRunFailedEventDetails=MapRunFailedEventDetails(error=error_name.error_name, cause=cause)
        ),
    )
    return FailureEventException(failure_event=failure_event)


def json_lines(text: str, max_items: int) -> Iterator[Any]:
    """The items of a JSON Lines text, in order, blank lines skipped; at most `max_items` of them
    (lines past the last item taken are not read). ValueError names the first line that is not JSON."""
    if max_items <= 0:
        return
    taken = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {number} of the JSONL source is not valid JSON: {exc}") from None
        yield item
        taken += 1
        if taken >= max_items:
            return


def _jsonl_transformer_class() -> type:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_output_transformer.transformer import (
        ResourceOutputTransformer,
    )

    class ResourceOutputTransformerJsonLines(ResourceOutputTransformer):
        """Like moto's ResourceOutputTransformerJson: pops the reader config, then the object's text."""

        def _eval_body(self, env: Any) -> None:
            reader_config = env.stack.pop()
            resource_value = env.stack.pop()
            try:
                items = list(json_lines(resource_value, reader_config["MaxItemsValue"]))
            except ValueError as exc:
                raise _map_run_failure(env, str(exc)) from None
            env.stack.append(items)

    return ResourceOutputTransformerJsonLines


# --- ItemBatcher ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemBatcher:
    """One Map state's ItemBatcher, compiled: BatchInput is moto's Parameters component (None if absent)."""

    max_items: int | None
    max_bytes: int | None
    batch_input: Any

    def batches(self, items: list[Any], batch_input: Any) -> list[dict[str, Any]]:
        """AWS's child inputs, `{"Items": [...], "BatchInput": {...}}`, items in order; a batch closes
        at MaxItemsPerBatch items or before it would exceed MaxInputBytesPerBatch (as compact JSON)."""
        extra: dict[str, Any] = {} if batch_input is None else {"BatchInput": batch_input}
        # `{"Items":[` + `]` + `,"BatchInput":...` around the items, each item plus a comma but the first.
        overhead = len(_compact({"Items": [], **extra}))
        batches: list[list[Any]] = []
        size = 0
        for item in items:
            item_size = len(_compact(item))
            current = batches[-1] if batches else None
            full = current is None or (self.max_items is not None and len(current) >= self.max_items)
            if not full and self.max_bytes is not None and current:
                full = size + 1 + item_size > self.max_bytes
            if full:
                if self.max_bytes is not None and overhead + item_size > self.max_bytes:
                    raise ValueError(
                        f"an item of {item_size} bytes does not fit a batch of MaxInputBytesPerBatch "
                        f"{self.max_bytes} bytes"
                    )
                batches.append([item])
                size = overhead + item_size
            else:
                batches[-1].append(item)
                size += 1 + item_size
        return [{"Items": batch, **extra} for batch in batches]


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _patch_item_batcher() -> None:
    """AWS groups a Distributed Map's items (each after its ItemSelector) into batches, one child
    workflow execution per batch, whose input is `{"Items": [...], "BatchInput": {...}}` (BatchInput
    evaluated like Parameters against the Map state's input). moto's ASL grammar has no ItemBatcher
    keyword: CreateStateMachine answers InvalidDefinition.

    `AmazonStateLanguageParser.parse` (moto parses with it to validate a definition, for each
    execution and for its static analysers) now takes each Map state's ItemBatcher out of the JSON it
    parses, compiles it, and keeps it on that Map state's parsed iteration component; a definition
    without ItemBatcher is parsed as given. `DistributedIterationComponent._map_run`, which runs the
    children over the items the ItemReader (or ItemsPath) produced, then runs them over the batches.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original_parse: Callable[[str], tuple[Any, Any]] = AmazonStateLanguageParser.parse
    original_map_run = DistributedIterationComponent._map_run

    def parse(definition: str) -> tuple[Any, Any]:
        stripped, declared = _take_item_batchers(definition)
        if not declared:
            return original_parse(definition)
        program, tree = original_parse(stripped)
        batchers = {name: _compile(name, spec, original_parse) for name, spec in declared.items()}
        _attach(program, batchers)
        return program, tree

    def _map_run(self: Any, env: Any, eval_input: Any) -> None:
        batcher: ItemBatcher | None = getattr(self, _BATCHER_ATTR, None)
        if batcher is None:
            original_map_run(self, env, eval_input)
            return
        items = env.stack.pop()
        # The Map state's effective input (after InputPath), as moto's workers see it.
        map_input = env.stack[-1] if env.stack else env.states.get_input()
        selector = eval_input.item_selector or eval_input.parameters
        if selector is not None:
            items = _select_items(env, selector, map_input, items)
            # Each item was selected once; the workers' `_eval_input` must not select the batches.
            eval_input.item_selector = None
            eval_input.parameters = None
        batch_input = None
        if batcher.batch_input is not None:
            batch_input = _evaluate(env, batcher.batch_input, map_input)
        try:
            batches = batcher.batches(items, batch_input)
        except ValueError as exc:
            raise _map_run_failure(env, str(exc), "StatesRuntime") from None
        env.stack.append(batches)
        original_map_run(self, env, eval_input)

    AmazonStateLanguageParser.parse = staticmethod(parse)  # type: ignore[method-assign]
    DistributedIterationComponent._map_run = _map_run  # type: ignore[method-assign]


_BATCHER_KEYS: Final = frozenset({"MaxItemsPerBatch", "MaxInputBytesPerBatch", "BatchInput"})


def _take_item_batchers(definition: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """The definition without its Map states' ItemBatcher fields, and those fields by state name
    (ASL state names are unique in the whole state machine). Nothing to take: the definition as given."""
    if "ItemBatcher" not in definition:
        return definition, {}
    try:
        document = json.loads(definition)
    except ValueError:
        return definition, {}  # moto's parser reports it
    found: dict[str, dict[str, Any]] = {}
    for name, state in _states(document):
        if state.get("Type") == "Map" and "ItemBatcher" in state:
            found[name] = state.pop("ItemBatcher")
            mode = (state.get("ItemProcessor") or {}).get("ProcessorConfig", {}).get("Mode", "INLINE")
            if mode != "DISTRIBUTED":
                _invalid(f"ItemBatcher of Map state '{name}': only a DISTRIBUTED Map batches its items")
    if not found:
        return definition, {}
    return json.dumps(document), found


def _states(document: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (name, state) of a state machine, nested Map and Parallel states' included."""
    states = document.get("States") if isinstance(document, dict) else None
    if not isinstance(states, dict):
        return
    for name, state in states.items():
        if not isinstance(state, dict):
            continue
        yield name, state
        for nested in ("ItemProcessor", "Iterator"):
            yield from _states(state.get(nested))
        for branch in state.get("Branches") or []:
            yield from _states(branch)


def _invalid(message: str) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import ASLParserException

    raise ASLParserException(errors=[message])


def _compile(name: str, spec: Any, parse: Callable[[str], tuple[Any, Any]]) -> ItemBatcher:
    where = f"ItemBatcher of Map state '{name}'"
    if not isinstance(spec, dict):
        _invalid(f"{where} must be an object")
    unknown = set(spec) - _BATCHER_KEYS
    if unknown:
        _invalid(
            f"{where}: unsupported fields {sorted(unknown)} (the sandbox supports {sorted(_BATCHER_KEYS)})"
        )
    limits: dict[str, int | None] = {}
    for key, ceiling in (("MaxItemsPerBatch", None), ("MaxInputBytesPerBatch", _MAX_BATCH_BYTES)):
        value = spec.get(key)
        if value is not None and (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < 1
            or (ceiling and value > ceiling)
        ):
            _invalid(f"{where}: {key} must be a positive integer{f' up to {ceiling}' if ceiling else ''}")
        limits[key] = value
    if limits["MaxItemsPerBatch"] is None and limits["MaxInputBytesPerBatch"] is None:
        _invalid(f"{where} needs MaxItemsPerBatch or MaxInputBytesPerBatch")
    batch_input = None
    if "BatchInput" in spec:
        if not isinstance(spec["BatchInput"], dict):
            _invalid(f"{where}: BatchInput must be an object")
        # moto compiles it exactly like a Pass state's Parameters (".$" paths, intrinsic functions).
        stub = {
            "StartAt": "B",
            "States": {"B": {"Type": "Pass", "Parameters": spec["BatchInput"], "End": True}},
        }
        program, _ = parse(json.dumps(stub))
        batch_input = program.states.states["B"].parameters
    return ItemBatcher(limits["MaxItemsPerBatch"], limits["MaxInputBytesPerBatch"], batch_input)


def _attach(program: Any, batchers: dict[str, ItemBatcher]) -> None:
    """Keep each compiled ItemBatcher on its parsed Map state's (distributed) iteration component."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap

    attached: set[str] = set()
    for component in _components(program):
        if isinstance(component, StateMap) and component.name in batchers:
            iteration = component.iteration_component
            if not isinstance(iteration, DistributedIterationComponent):
                _invalid(f"ItemBatcher of Map state '{component.name}': only a DISTRIBUTED Map batches")
            setattr(iteration, _BATCHER_ATTR, batchers[component.name])
            attached.add(component.name)
    if attached != set(batchers):
        _invalid(f"ItemBatcher of Map states {sorted(set(batchers) - attached)}: no such Map state parsed")


def _components(root: Any) -> Iterator[Any]:
    """Every moto ASL component reachable from `root` (states, nested programs, iteration components)."""
    seen: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            pending.extend(node.values())
        elif isinstance(node, list | tuple):
            pending.extend(node)
        elif type(node).__module__.startswith("moto.stepfunctions.parser.asl.component"):
            yield node
            pending.extend(vars(node).values())


def _select_items(env: Any, selector: Any, map_input: Any, items: list[Any]) -> list[Any]:
    """Each item through the Map state's ItemSelector, as moto's workers do it for an unbatched item
    (`$` is the Map state's input, `$$.Map.Item` the item and its index)."""
    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData

    selected = []
    frame = env.open_inner_frame()
    try:
        for index, item in enumerate(items):
            frame.states.context_object.context_object_data["Map"] = MapData(
                Item=ItemData(Index=index, Value=item)
            )
            frame.states.reset(input_value=map_input)
            frame.stack.append(map_input)
            selector.eval(frame)
            selected.append(frame.stack.pop())
    finally:
        env.delete_frame(frame)
    return selected


def _evaluate(env: Any, parameters: Any, map_input: Any) -> Any:
    frame = env.open_inner_frame()
    try:
        frame.states.reset(input_value=map_input)
        frame.stack.append(map_input)
        parameters.eval(frame)
        return frame.stack.pop()
    finally:
        env.delete_frame(frame)


# --- Task on the Step Functions service integration ------------------------------------------------------
def _patch_sfn_service_task() -> None:
    """AWS takes a `states:startExecution` Task's Parameters in the API's documented (PascalCase) names,
    `StateMachineArn`, `Name`, `Input`, and answers in them: `{"ExecutionArn", "StartDate"}`, or for
    `.sync:2` the ended execution's DescribeExecution output (`Status`, `Output` as JSON, ...); an ended
    execution of the same name is `StepFunctions.ExecutionAlreadyExistsException`. LocalStack turns the
    names into boto's (camelCase) and back in `StateTaskService._normalise_parameters`/
    `_normalise_response`; moto 5.2.5 ports those as no-ops, so botocore raises KeyError
    'StateMachineArn' and every such Task fails with States.Runtime.

    `StateTaskServiceSfn._normalise_parameters` now also renames the parameters to boto's names, and
    `_normalise_response` renames the answer's keys to AWS's (the user JSON under Input/Output kept).
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    original_parameters = StateTaskServiceSfn._normalise_parameters
    original_response = StateTaskServiceSfn._normalise_response

    def _normalise_parameters(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        original_parameters(self, parameters, boto_service_name, service_action_name)
        if service_action_name is None:
            for key in list(parameters):
                parameters[key[:1].lower() + key[1:]] = parameters.pop(key)

    def _normalise_response(
        self: Any,
        response: Any,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        original_response(self, response, boto_service_name, service_action_name)
        if isinstance(response, dict):
            _pascal_case_keys(response)

    StateTaskServiceSfn._normalise_parameters = _normalise_parameters  # type: ignore[method-assign]
    StateTaskServiceSfn._normalise_response = _normalise_response  # type: ignore[method-assign]


_USER_JSON_KEYS: Final = frozenset({"Input", "Output"})


def _pascal_case_keys(value: dict[str, Any]) -> None:
    """Rename boto's camelCase keys in place (`executionArn` -> `ExecutionArn`), into nested objects
    such as `inputDetails` but not into an execution's own Input and Output."""
    for key in list(value):
        renamed = key[:1].upper() + key[1:]
        item = value.pop(key)
        value[renamed] = item
        if isinstance(item, dict) and renamed not in _USER_JSON_KEYS:
            _pascal_case_keys(item)
