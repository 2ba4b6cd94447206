"""What a kernel's Triton IR (TTIR) says about one launch: how many times each loop body runs in every
program, and how many bytes each load and store moves from which tensor argument.

The TTIR text of a build (`compiled.asm["ttir"]`) is parsed into nested blocks of ops. Loop bounds and `if`
conditions are scalar integer expressions of the kernel's arguments, its program id and scalars it loads
(a packed row's `cu_seqlens`), so they are evaluated exactly for each program with the launch's real
argument values: only the ops that control flow depends on are evaluated (the "control slice"), and a loop
whose inner control does not depend on its induction variable is evaluated once and multiplied by its trip
count. Tensor ops are never evaluated.

Counts are *per program*; an op's executions are those of the block it sits in (`Program.block_runs`).
Loads and stores move every element of their tile (masks are taken as full: the presets' shapes are
multiples of the tiles, so only the last block of a ragged row loads less).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

ELEMENT_BYTES = {"i1": 1, "i8": 1, "i16": 2, "i32": 4, "i64": 8, "f16": 2, "bf16": 2, "f32": 4, "f64": 8,
                 "f8E4M3FN": 1, "f8E5M2": 1}
_NAME = r"%[\w.$#-]+"


@dataclasses.dataclass
class Block:
    args: list[str]
    ops: list[Op]
    index: int = -1  # preorder number over the function's blocks; 0 is the function body


@dataclasses.dataclass
class Op:
    name: str
    results: list[str]
    operands: list[str]
    head: str  # the op's first line, without its results
    regions: list[Block]
    loc: str = ""  # the op's location reference ("#loc12" or an inline loc(...))
    tail: str = ""  # the closing line of an op with regions

    @property
    def type_text(self) -> str:
        text = self.tail if self.regions else self.head
        return text.rsplit(" : ", 1)[-1] if " : " in text else ""

    @property
    def is_tensor(self) -> bool:
        return "tensor<" in self.type_text or "tensor<" in self.head.split(" : ")[-1]


@dataclasses.dataclass
class Function:
    name: str
    params: list[str]  # SSA names of the parameters, in order
    param_names: dict[str, str]  # SSA name -> the Python argument's name
    body: Block
    locs: dict[str, str]  # "#locN" -> its definition text
    blocks: list[Block]  # preorder

    def walk(self) -> Iterator[tuple[Op, Block]]:
        """Every op with the block that holds it, in program order."""
        def visit(block):
            for op in block.ops:
                yield op, block
                for region in op.regions:
                    yield from visit(region)
        yield from visit(self.body)


def _split_top_level(text: str, sep: str = ",") -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char in "([{<":
            depth += 1
        elif char in ")]}>":
            depth -= 1
        if char == sep and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if current:
        parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _loc_of(text: str) -> tuple[str, str]:
    """`(text without its trailing loc(...), the loc reference)`."""
    match = re.search(r"(?:^|\s+)loc\((.*)\)\s*$", text)
    if not match:
        return text, ""
    return text[: match.start()], match.group(1)


def _results(text: str) -> list[str]:
    results = []
    for part in _split_top_level(text):
        name, _, count = part.partition(":")
        results += [f"{name}#{i}" for i in range(int(count))] if count else [name]
    return results


_FOR = re.compile(rf"scf\.for ({_NAME}) = ({_NAME}) to ({_NAME}) step ({_NAME})(?: iter_args\((.*?)\))?")


def _parse_op(line: str) -> tuple[Op, list[str]]:
    """An op from its (first) line, and the block arguments of its first region (scf.for)."""
    body, loc = _loc_of(line.rstrip("{( ").rstrip())
    results: list[str] = []
    match = re.match(rf"^((?:{_NAME}(?::\d+)?(?:, )?)+) = (.*)$", body)
    if match:
        results, body = _results(match.group(1)), match.group(2)
    name = body.split(" ", 1)[0].split("(", 1)[0].strip('"')
    block_args: list[str] = []
    if name == "scf.for":
        m = _FOR.search(body)
        iv, lb, ub, step, iter_args = m.groups()
        pairs = [p.split(" = ") for p in _split_top_level(iter_args or "")]
        block_args = [iv] + [p[0] for p in pairs]
        operands = [lb, ub, step] + [p[1] for p in pairs]
    else:
        before_type = body.split(" : ", 1)[0]
        operands = re.findall(rf"{_NAME}(?![\w])", before_type)
    return Op(name, results, operands, body, [], loc), block_args


def _parse_signature(line: str) -> tuple[str, list[str], dict[str, str]]:
    name = re.search(r"@([\w$.]+)\(", line).group(1)
    inner = line[line.index("(") + 1:]
    depth, end = 1, 0
    while depth and end < len(inner):
        depth += {"(": 1, ")": -1}.get(inner[end], 0)
        end += 1
    end -= 1
    params, names = [], {}
    for part in _split_top_level(inner[:end]):
        ssa = part.split(":", 1)[0].strip()
        params.append(ssa)
        named = re.search(r'loc\("([\w$]+)"', part)
        names[ssa] = named.group(1) if named else ssa.lstrip("%")
    return name, params, names


def parse(text: str) -> Function:
    """The public `tt.func` of a TTIR module (the kernel; other functions are skipped: a call to one counts
    as one op)."""
    locs = {}
    for line in text.splitlines():
        match = re.match(r"^(#loc\d*) = loc\((.*)\)\s*$", line)
        if match:
            locs[match.group(1)] = match.group(2)
    function = None
    stack: list[tuple[Op | None, Block]] = []
    blocks: list[Block] = []

    def new_block(args):
        block = Block(list(args), [], len(blocks))
        blocks.append(block)
        return block

    skip_until = None  # the closing line of a function other than the kernel (noinline helpers)
    for raw in text.splitlines():
        line = raw.strip()
        if skip_until is not None:
            if raw.startswith(skip_until):
                skip_until = None
            continue
        if not line or line.startswith("#loc") or line.startswith("module"):
            continue
        if line.startswith("tt.func") and (function is not None or not line.startswith("tt.func public")):
            skip_until = raw[: len(raw) - len(raw.lstrip())] + "}"
            continue
        if line.startswith("tt.func"):
            name, params, param_names = _parse_signature(line)
            body = new_block(params)
            function = Function(name, params, param_names, body, locs, blocks)
            stack.append((None, body))
            continue
        if function is None:
            continue
        if line.startswith("^bb"):
            stack[-1][1].args = re.findall(rf"({_NAME}):", line)
            continue
        if line.startswith("}"):
            if not stack:
                continue  # the module's end
            op, _ = stack.pop()
            if line.startswith("} else {"):
                block = new_block([])
                op.regions.append(block)
                stack.append((op, block))
            elif op is not None:
                op.tail, loc = _loc_of(line.lstrip("})").strip())
                op.loc = loc or op.loc
            continue
        if line.startswith("tt.return"):
            continue
        op, block_args = _parse_op(line)
        stack[-1][1].ops.append(op)
        if line.endswith("{"):
            block = new_block(block_args)
            op.regions.append(block)
            stack.append((op, block))
    if function is None:
        raise ValueError("no tt.func in the TTIR text")
    return function


# ----- locations


def loc_lines(function: Function, loc: str, depth: int = 0) -> tuple[tuple[str, int], ...]:
    """The `(file, line)`s of a location, innermost first (an inlined call adds its caller's)."""
    if depth > 50 or not loc:
        return ()
    loc = function.locs.get(loc, loc) if loc.startswith("#loc") else loc
    if loc.startswith("#loc"):
        return ()
    match = re.match(r'^"([^"]*)":(\d+):\d+$', loc)
    if match:
        return ((match.group(1), int(match.group(2))),)
    match = re.match(r'^"[^"]*"\((#loc\d*)\)$', loc)  # a named location
    if match:
        return loc_lines(function, match.group(1), depth + 1)
    match = re.match(r"^callsite\((#loc\d*) at (#loc\d*)\)$", loc)
    if match:
        return loc_lines(function, match.group(1), depth + 1) + loc_lines(function, match.group(2), depth + 1)
    return ()


# ----- pointers


def pointer_sources(function: Function) -> dict[str, str]:
    """SSA name -> the tensor argument a pointer (or tensor of pointers, or descriptor) is derived from."""
    source = {ssa: function.param_names[ssa] for ssa in function.params}
    for op, _ in function.walk():
        if op.name in ("tt.addptr", "tt.splat", "tt.broadcast", "tt.expand_dims", "tt.reshape", "tt.trans",
                       "ttg.convert_layout", "tt.make_tensor_descriptor", "tt.make_tensor_ptr", "tt.advance"):
            base = source.get(op.operands[0]) if op.operands else None
            if base:
                for result in op.results:
                    source[result] = base
        elif op.name == "arith.select" and len(op.operands) == 3:
            base = source.get(op.operands[1]) or source.get(op.operands[2])
            if base:
                source[op.results[0]] = base
        elif op.name == "scf.for":
            region = op.regions[0]
            for arg, init in zip(region.args[1:], op.operands[3:]):
                if init in source:
                    source[arg] = source[init]
            for result, init in zip(op.results, op.operands[3:]):
                if init in source:
                    source[result] = source[init]
    return source


@dataclasses.dataclass(frozen=True)
class MemoryOp:
    """One load or store of the TTIR: the tensor argument it addresses, elements × element bytes per
    execution, the block it runs in and its source lines (innermost first)."""

    kind: str  # "load" or "store"
    tensor: str | None
    elements: int
    element_bytes: int
    block: int
    lines: tuple[tuple[str, int], ...]
    order: int  # position among the function's ops

    @property
    def bytes(self) -> int:
        return self.elements * self.element_bytes


def _shape_and_element(type_text: str) -> tuple[int, str]:
    match = re.search(r"tensor<([\dx]+)x(?:!tt\.ptr<)?(\w+)", type_text)
    if match:
        elements = 1
        for size in match.group(1).split("x"):
            elements *= int(size)
        return elements, match.group(2)
    match = re.search(r"!tt\.ptr<(\w+)>", type_text)
    return 1, match.group(1) if match else "f32"


def memory_ops(function: Function) -> list[MemoryOp]:
    sources = pointer_sources(function)
    found = []
    for order, (op, block) in enumerate(function.walk()):
        kind = {"tt.load": "load", "tt.descriptor_load": "load", "tt.store": "store", "tt.descriptor_store": "store",
                "tt.atomic_rmw": "atomic", "tt.atomic_cas": "atomic"}.get(op.name)
        if kind is None:
            continue
        type_text = op.type_text
        if op.name == "tt.descriptor_load":
            type_text = type_text.split("->")[-1]
        elements, element = _shape_and_element(type_text)
        pointer = op.operands[1] if op.name == "tt.atomic_rmw" and len(op.operands) > 1 else op.operands[0]
        found.append(MemoryOp(kind, sources.get(pointer), elements, ELEMENT_BYTES.get(element, 4), block.index,
                              loc_lines(function, op.loc), order))
    return found


# ----- loop trip counts


_BINARY = {
    "arith.addi": lambda a, b: a + b, "arith.subi": lambda a, b: a - b, "arith.muli": lambda a, b: a * b,
    "arith.divsi": lambda a, b: int(a / b) if abs(a) < 2**52 else (abs(a) // abs(b)) * (1 if (a < 0) == (b < 0) else -1),
    "arith.divui": lambda a, b: a // b, "arith.remui": lambda a, b: a % b,
    "arith.remsi": lambda a, b: a - b * (abs(a) // abs(b)) * (1 if (a < 0) == (b < 0) else -1),
    "arith.ceildivsi": lambda a, b: -(-a // b), "arith.floordivsi": lambda a, b: a // b,
    "arith.minsi": min, "arith.maxsi": max, "arith.minui": min, "arith.maxui": max,
    "arith.andi": lambda a, b: a & b, "arith.ori": lambda a, b: a | b, "arith.xori": lambda a, b: a ^ b,
    "arith.shli": lambda a, b: a << b, "arith.shrsi": lambda a, b: a >> b, "arith.shrui": lambda a, b: a >> b,
}
_COMPARE = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "slt": lambda a, b: a < b, "sle": lambda a, b: a <= b,
            "sgt": lambda a, b: a > b, "sge": lambda a, b: a >= b, "ult": lambda a, b: a < b, "ule": lambda a, b: a <= b,
            "ugt": lambda a, b: a > b, "uge": lambda a, b: a >= b}
_CASTS = ("arith.extsi", "arith.extui", "arith.trunci", "arith.index_cast", "arith.index_castui", "arith.bitcast")


class ControlFlowUnknown(ValueError):
    """A loop bound or branch condition depends on a value this reader does not evaluate."""


class Program:
    """Evaluates the control flow of one kernel launch, one program at a time."""

    def __init__(self, function: Function, arguments: dict, grid: tuple[int, ...]):
        self.function = function
        self.grid = tuple(grid) + (1,) * (3 - len(grid))
        self.arguments = arguments
        self.defs: dict[str, Op] = {}
        self.for_of_arg: dict[str, Op] = {}
        for op, _ in function.walk():
            for result in op.results:
                self.defs[result] = op
            if op.name == "scf.for":
                for arg in op.regions[0].args:
                    self.for_of_arg[arg] = op
        self.needed = self._control_slice()
        self.loop_invariant = {id(op): self._inner_control_invariant(op) for op, _ in function.walk() if op.name == "scf.for"}

    # which values control flow depends on
    def _control_operands(self, op: Op) -> list[str]:
        if op.name == "scf.for":
            return op.operands[:3]
        if op.name == "scf.if":
            return op.operands[:1]
        return []

    def _dependencies(self, name: str) -> list[str]:
        op = self.defs.get(name)
        if op is not None:
            if op.name == "scf.for":  # a loop's result: its init value and what the body yields
                index = op.results.index(name)
                yielded = [o for o in op.regions[0].ops if o.name == "scf.yield"]
                carried = [y.operands[index] for y in yielded if index < len(y.operands)]
                return [op.operands[3 + index], *carried, *op.operands[:3]]
            return list(op.operands)
        loop = self.for_of_arg.get(name)
        if loop is not None and name != loop.regions[0].args[0]:
            index = loop.regions[0].args.index(name) - 1
            yielded = [o for o in loop.regions[0].ops if o.name == "scf.yield"]
            return [loop.operands[3 + index]] + [y.operands[index] for y in yielded if index < len(y.operands)]
        if loop is not None:
            return list(loop.operands[:3])
        return []

    def _closure(self, roots) -> set[str]:
        seen, todo = set(), list(roots)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo += self._dependencies(name)
        return seen

    def _control_slice(self) -> set[str]:
        roots = [name for op, _ in self.function.walk() for name in self._control_operands(op)]
        return self._closure(roots)

    def _inner_control_invariant(self, loop: Op) -> bool:
        """Whether no loop bound or condition inside `loop` depends on its induction variable or carried values."""
        carried = set(loop.regions[0].args)

        def inner(block):
            for op in block.ops:
                yield from self._control_operands(op)
                for region in op.regions:
                    yield from inner(region)

        return not (self._closure(list(inner(loop.regions[0]))) & carried)

    # evaluation
    def _param(self, ssa: str):
        value = self.arguments.get(self.function.param_names[ssa])
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float):
            return value
        if hasattr(value, "data_ptr"):
            return ("ptr", self.function.param_names[ssa], 0)
        return None

    def _load(self, pointer):
        if not (isinstance(pointer, tuple) and pointer[0] == "ptr"):
            return None
        tensor = self.arguments.get(pointer[1])
        flat = tensor.reshape(-1)
        return flat[pointer[2]].item() if 0 <= pointer[2] < flat.numel() else None

    def _eval(self, op: Op, env: dict, pid: tuple[int, int, int]):
        args = [env.get(name) for name in op.operands]
        name = op.name
        if name == "arith.constant":
            match = re.match(r"arith\.constant (?:(-?\d+) : i\d+|(true|false))$", op.head)
            if match is None:
                return None
            return int(match.group(1)) if match.group(1) is not None else int(match.group(2) == "true")
        if op.is_tensor or any(a is None for a in args):
            return None
        if name == "tt.get_program_id":
            return pid["xyz".index(op.head.split()[1])]
        if name == "tt.get_num_programs":
            return self.grid["xyz".index(op.head.split()[1])]
        if name in _BINARY:
            return _BINARY[name](*args)
        if name == "arith.cmpi":
            return int(_COMPARE[op.head.split()[1].rstrip(",")](*args))
        if name == "arith.select":
            return args[1] if args[0] else args[2]
        if name in _CASTS:
            return args[0]
        if name == "tt.addptr" and isinstance(args[0], tuple):
            return (args[0][0], args[0][1], args[0][2] + args[1])
        if name == "tt.load":
            return self._load(args[0])
        return None

    def _run(self, block: Block, env: dict, runs: list[float], times: float, pid) -> list:
        """Execute `block` (`times` identical executions), counting block runs; returns what it yields."""
        runs[block.index] += times
        for op in block.ops:
            if op.name == "scf.yield":
                return [env.get(name) for name in op.operands]
            if op.name == "scf.for":
                self._run_for(op, env, runs, times, pid)
            elif op.name == "scf.if":
                condition = env.get(op.operands[0])
                if condition is None:
                    raise ControlFlowUnknown(f"condition {op.operands[0]} of {op.head[:80]!r}")
                branch = op.regions[0] if condition else (op.regions[1] if len(op.regions) > 1 else None)
                yielded = self._run(branch, dict(env), runs, times, pid) if branch is not None else []
                for result, value in zip(op.results, yielded or []):
                    env[result] = value
            elif op.regions:
                continue  # tt.reduce / tt.scan combine regions: no control flow
            elif any(result in self.needed for result in op.results):
                value = self._eval(op, env, pid)
                for result in op.results:
                    env[result] = value
        return []

    def _run_for(self, op: Op, env: dict, runs: list[float], times: float, pid) -> None:
        lower, upper, step = (env.get(name) for name in op.operands[:3])
        if None in (lower, upper, step):
            raise ControlFlowUnknown(f"bounds {op.operands[:3]} of {op.head[:80]!r}")
        trips = max(0, -(-(upper - lower) // step))
        body = op.regions[0]
        carried = [env.get(name) for name in op.operands[3:]]
        needs_values = any(result in self.needed for result in op.results)
        if trips == 0:
            for result, value in zip(op.results, carried):
                env[result] = value
            return
        if self.loop_invariant[id(op)] and not needs_values:
            self._run(body, {**env, **dict(zip(body.args, [lower, *carried]))}, runs, times * trips, pid)
            return
        for index in range(trips):
            inner = {**env, **dict(zip(body.args, [lower + index * step, *carried]))}
            carried = self._run(body, inner, runs, times, pid) or carried
        for result, value in zip(op.results, carried):
            env[result] = value

    def block_runs(self, pid: tuple[int, int, int]) -> list[float]:
        """How many times each block (by index) runs in program `pid`."""
        env = {ssa: self._param(ssa) for ssa in self.function.params}
        runs = [0.0] * len(self.function.blocks)
        self._run(self.function.body, env, runs, 1.0, pid)
        return runs

    def depends_on_program_id(self) -> bool:
        ids = {r for op, _ in self.function.walk() if op.name in ("tt.get_program_id",) for r in op.results}
        return bool(self.needed & ids)
