"""What a kernel's SASS says, statically: its instructions with their source lines, its loops, and per loop
body the instructions a warp issues, the barriers, the shared-memory wavefronts, the width of every global
load and store, and how many global-load bytes a warp has in flight before it first waits on one.

Input: `nvdisasm -c -g -gi` text (`adajudge.kernels.aot.sass`). Loops are the ranges closed by a backward
branch (`BRA` to an earlier label); a range nested in another is an inner loop. "In flight" follows the
register dependences: the global loads a warp issues from the start of a loop body (or from its last wait)
until an instruction reads or overwrites a register one of them writes are outstanding together; the
largest such batch is the warp's memory-level parallelism in that body.
"""
from __future__ import annotations

import dataclasses
import re

_LINE = re.compile(r'//## File "([^"]*)", line (\d+)((?: inlined at "[^"]*", line \d+)*)')
_INSTRUCTION = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(?:(@!?U?P\w+)\s+)?([A-Z][A-Z0-9_.]*)\s*(.*?)\s*;")
_LABEL = re.compile(r"^(\.L_x_\d+):")
_REGISTER = re.compile(r"\bR(\d+)(\.64)?\b")

GLOBAL_LOADS = ("LDG", "LD", "LDGSTS", "UTMALDG", "UBLKCP")
GLOBAL_STORES = ("STG", "ST", "UTMASTG", "RED", "REDG", "ATOMG", "ATOM")
SHARED_OPS = ("LDS", "STS", "LDSM", "STSM", "ATOMS", "LDGSTS")
BARRIERS = ("BAR",)
LOCAL_OPS = ("LDL", "STL")
NO_DESTINATION = ("STG", "ST", "STS", "STL", "STSM", "RED", "REDG", "BAR", "BRA", "EXIT", "RET", "NOP", "WARPSYNC",
                  "BSSY", "BSYNC", "DEPBAR", "MEMBAR", "ERRBAR", "CCTL", "YIELD", "LDGDEPBAR", "UTMALDG", "UTMASTG")
WARP_LANES = 32
WAVEFRONT_BYTES = 128  # a shared-memory wavefront: 32 banks of 4 bytes, one per clock per SM


@dataclasses.dataclass(frozen=True)
class Instruction:
    address: int
    predicate: str
    opcode: str  # with modifiers, e.g. "LDG.E.128"
    operands: str
    lines: tuple[tuple[str, int], ...]  # (file, line)s, innermost first (an inlined call adds its caller's)

    @property
    def base(self) -> str:
        return self.opcode.split(".", 1)[0]

    @property
    def modifiers(self) -> list[str]:
        return self.opcode.split(".")[1:]

    @property
    def access_bytes(self) -> int:
        """Bytes one thread moves with a load or store (the width of the access)."""
        mods = self.modifiers
        for bits, size in (("128", 16), ("64", 8), ("U16", 2), ("S16", 2), ("U8", 1), ("S8", 1)):
            if bits in mods:
                return size
        return 4

    @property
    def is_global_load(self) -> bool:
        return self.base in GLOBAL_LOADS

    @property
    def is_global_store(self) -> bool:
        return self.base in GLOBAL_STORES

    @property
    def is_shared(self) -> bool:
        return self.base in SHARED_OPS

    @property
    def is_barrier(self) -> bool:
        return self.base in BARRIERS

    @property
    def shared_wavefronts(self) -> int:
        """Wavefronts of a full warp's shared-memory access with no bank conflict."""
        if self.base in ("LDSM", "STSM"):
            count = next((int(m) for m in self.modifiers if m in ("2", "4")), 1)
            return count  # one 8x8 matrix of 16-bit values (128 bytes) per wavefront
        return max(1, self.access_bytes * WARP_LANES // WAVEFRONT_BYTES)

    def registers(self) -> tuple[set[int], set[int]]:
        """`(written, read)` general registers. The first operand is the destination, except for stores,
        barriers and branches; a load of N bytes writes N/4 consecutive registers, a wide op two."""
        parts = [p.strip() for p in re.split(r",(?![^\[]*\])", self.operands)] if self.operands else []
        written: set[int] = set()
        if parts and self.base not in NO_DESTINATION and (match := re.match(r"^R(\d+)$", parts[0])):
            first = int(match.group(1))
            if self.is_global_load or self.base in ("LDS", "LDL", "LDC"):
                span = max(1, self.access_bytes // 4)
            else:
                span = 2 if "WIDE" in self.modifiers or "64" in self.modifiers else 1
            written = set(range(first, first + span))
            parts = parts[1:]
        read: set[int] = set()
        for part in parts:
            for number, wide in _REGISTER.findall(part):
                read.update(range(int(number), int(number) + (2 if wide else 1)))
        return written, read


@dataclasses.dataclass
class Loop:
    start: int  # address of the first instruction of the body (the branch target)
    end: int  # address of the backward branch
    parent: Loop | None = None
    depth: int = 0

    def contains(self, address: int) -> bool:
        return self.start <= address <= self.end


@dataclasses.dataclass
class Region:
    """The instructions of one loop body (or of the kernel outside every loop), inner loops excluded;
    `waiting_loops`: the loops nested directly in it whose own bodies (inner loops excluded) load from global
    memory."""

    loop: Loop | None
    instructions: list[Instruction]
    waiting_loops: list[Loop] = dataclasses.field(default_factory=list)

    @property
    def lines(self) -> set[tuple[tuple[str, int], ...]]:
        return {i.lines for i in self.instructions if i.lines}

    def counts(self) -> dict:
        """Per warp and per execution of this region."""
        return {
            "instructions": len(self.instructions),
            "barriers": sum(i.is_barrier for i in self.instructions),
            "shared_instructions": sum(i.is_shared for i in self.instructions),
            "shared_wavefronts": sum(i.shared_wavefronts for i in self.instructions if i.is_shared),
            "global_load_bytes": sum(i.access_bytes * WARP_LANES for i in self.instructions if i.is_global_load),
            "global_store_bytes": sum(i.access_bytes * WARP_LANES for i in self.instructions if i.is_global_store),
        }

    def load_batches(self) -> list[Batch]:
        """The global loads a warp has outstanding together, batch by batch (see the module docstring), with
        the work it issues between the batch's last load and the first instruction that waits on it. A batch
        still outstanding when a waiting inner loop runs (issued before it, first used after it) closes there,
        `across` that loop."""
        batches, pending, loads, work = [], set(), [], [0, 0]
        previous = -1
        for instruction in self.instructions:
            crossed = next((loop for loop in self.waiting_loops if previous < loop.start <= instruction.address), None)
            previous = instruction.address
            if pending and crossed is not None:
                batches.append(Batch(loads, *work, across=crossed))
                pending, loads = set(), []
            written, read = instruction.registers()
            if pending and (read | written) & pending:
                batches.append(Batch(loads, *work))
                pending, loads = set(), []
            if instruction.is_global_load:
                pending |= written
                loads.append(instruction)
                work = [0, 0]
            elif loads:
                work[0] += 1
                work[1] += instruction.is_barrier
        if loads:
            batches.append(Batch(loads, *work))
        return batches


@dataclasses.dataclass
class Batch:
    """Global loads in flight together, and the instructions (barriers among them) a warp issues after the
    last of them before it waits: work that hides part of their latency."""

    loads: list[Instruction]
    instructions_before_use: int
    barriers_before_use: int
    across: Loop | None = None  # a loop that runs, and waits on its own loads, before the first use


@dataclasses.dataclass
class Sass:
    instructions: list[Instruction]
    loops: list[Loop]

    def regions(self) -> list[Region]:
        """The kernel outside every loop first, then each loop body, outer loops before inner ones."""
        by_loop: dict[int, list[Instruction]] = {-1: []}
        for index in range(len(self.loops)):
            by_loop[index] = []
        for instruction in self.instructions:
            innermost = -1
            for index, loop in enumerate(self.loops):
                if loop.contains(instruction.address) and (innermost < 0 or self.loops[innermost].depth < loop.depth):
                    innermost = index
            by_loop[innermost].append(instruction)
        # a loop whose own body (not an inner loop's) waits on a global load: it has a first load batch
        waiting = [loop for index, loop in enumerate(self.loops) if any(i.is_global_load for i in by_loop[index])]

        def children(parent):
            return [loop for loop in waiting if loop.parent is parent]

        return [Region(None, by_loop[-1], children(None))] + [Region(loop, by_loop[i], children(loop))
                                                             for i, loop in enumerate(self.loops)]

    @property
    def spills(self) -> int:
        return sum(i.base in LOCAL_OPS for i in self.instructions)


def parse(text: str) -> Sass:
    instructions, labels, branches = [], {}, []
    lines: tuple[tuple[str, int], ...] = ()
    fresh_line = False
    pending_label = None
    for raw in text.splitlines():
        match = _LINE.search(raw)
        if match:
            callers = re.findall(r'inlined at "([^"]*)", line (\d+)', match.group(3))
            chain = ((match.group(1), int(match.group(2))), *((file, int(line)) for file, line in callers))
            if not fresh_line or len(chain) > len(lines):  # of a group of line notes, the inlined one applies
                lines = chain
            fresh_line = True
            continue
        match = _LABEL.match(raw.strip())
        if match:
            pending_label = match.group(1)
            continue
        match = _INSTRUCTION.match(raw)
        if not match:
            continue
        address = int(match.group(1), 16)
        if pending_label:
            labels[pending_label] = address
            pending_label = None
        instruction = Instruction(address, match.group(2) or "", match.group(3), match.group(4), lines)
        instructions.append(instruction)
        fresh_line = False
        if instruction.base == "BRA":
            target = re.search(r"\((\.L_x_\d+)\)", instruction.operands)
            if target:
                branches.append((address, target.group(1)))
    spans: dict[int, int] = {}
    for address, label in branches:
        target = labels.get(label)
        if target is not None and target < address:  # (a branch to itself is the trap after EXIT)
            spans[target] = max(spans.get(target, address), address)
    loops = sorted((Loop(start, end) for start, end in spans.items()), key=lambda loop: (loop.start, -loop.end))
    for loop in loops:
        enclosing = [other for other in loops if other is not loop and other.start <= loop.start and loop.end <= other.end]
        loop.parent = min(enclosing, key=lambda other: other.end - other.start) if enclosing else None
    for loop in loops:
        depth, parent = 0, loop.parent
        while parent is not None:
            depth, parent = depth + 1, parent.parent
        loop.depth = depth
    return Sass(instructions, loops)
