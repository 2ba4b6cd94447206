"""One launch's static profile: its sm_90 build read as SASS, joined to its TTIR and its launch plan.

The SASS gives what a warp issues per execution of each loop body (instructions, barriers, shared-memory
wavefronts, global loads in flight) and the width of every global access; the TTIR gives how many times
each loop body runs in each program (`ttir.Program`) and which tensor each access addresses. The two are
joined by source line: a SASS loop is the TTIR `scf.for` whose (inlined) line its body's instructions
carry, checked against the nesting of both; a SASS load or store takes the tensor of the TTIR load or
store on its line.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from adajudge.kernels import aot
from adajudge.kernels.launch import Launch
from bench.gpu_model import sass as sass_reader
from bench.gpu_model import ttir as ttir_reader


@dataclasses.dataclass
class RegionProfile:
    """One SASS loop body (or the code outside every loop), per warp and per execution."""

    loop_start: int | None
    block: int  # the TTIR block whose runs count this region's executions
    instructions: int
    barriers: int
    shared_instructions: int
    shared_wavefronts: int
    load_batches: list[LoadBatch]


@dataclasses.dataclass
class LoadBatch:
    """Global loads a warp has in flight together: (tensor, bytes per warp) each, and the work it issues
    after the last of them before it waits on them; `across_region`: the region (a loop waiting on loads of
    its own) that runs between the batch's loads and their first use."""

    loads: list[tuple[str | None, int]]
    instructions_before_use: int
    barriers_before_use: int
    across_region: int | None = None

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.loads)


@dataclasses.dataclass
class KernelProfile:
    name: str
    grid: tuple[int, ...]
    num_warps: int
    registers: int
    spills: int
    stack_bytes: int
    shared_bytes: int  # static + dynamic shared memory of one CTA
    regions: list[RegionProfile]
    region_runs: np.ndarray  # [programs, regions]: executions of each region in each program
    requested: dict[str, np.ndarray]  # tensor -> [programs, 2] bytes loaded / stored per program (TTIR, logical)
    footprint: dict[str, int]  # tensor -> bytes of the argument
    widths: dict[str, dict[str, list[int]]]  # tensor -> {"load"/"store": access widths in bits, in SASS order}
    notes: list[str]

    @property
    def programs(self) -> int:
        return self.region_runs.shape[0]


def _map_loops(function: ttir_reader.Function, regions, notes) -> tuple[list[int], list[float]]:
    """For each SASS region, the TTIR block counting its executions (0: the function body) and the share of
    that block's runs it executes: 1, or for a loop ptxas unrolled k times 1/k on the unrolled copy and 0 on
    its remainder loop (which runs fewer than k times per entry)."""
    fors = []  # (op, body block, lines, enclosing scf.for or None)

    def visit(block, enclosing):
        for op in block.ops:
            if op.name in ("scf.for", "scf.while"):  # a while loop's body is its second region
                body = op.regions[0] if op.name == "scf.for" else op.regions[-1]
                fors.append((op, body.index, ttir_reader.loc_lines(function, op.loc), enclosing))
                for region in op.regions:
                    visit(region, op)
            else:
                for region in op.regions:
                    visit(region, enclosing)

    visit(function.body, None)
    mapped: dict[int, object] = {}  # id(sass loop) -> scf.for op
    blocks, scales = [0] * len(regions), [1.0] * len(regions)
    copies: dict[int, list[int]] = {}  # id(scf.for) -> the regions mapped to it
    order = sorted(range(1, len(regions)), key=lambda i: (regions[i].loop.depth, regions[i].loop.start))
    for index in order:
        loop = regions[index].loop
        parent = mapped.get(id(loop.parent)) if loop.parent is not None else None
        lines = regions[index].lines
        innermost = {chain[0] for chain in lines if chain}
        # by the whole inlining chain, or by the line alone (Triton 3.6 writes no inlining into the line table);
        # first a loop not taken yet inside the parent's, then one anywhere, then a copy (ptxas unrolled it)
        exact = [f for f in fors if f[2] in lines]
        loose = [f for f in fors if f[2] and f[2][0] in innermost and f not in exact]
        fresh = [f for f in exact + loose if id(f[0]) not in copies]
        candidates = ([f for f in fresh if f[3] is parent] or fresh
                      or [f for f in exact + loose if f[3] is parent])
        if not candidates:
            notes.append(f"SASS loop at {loop.start:#x} matches no TTIR loop: counted once per enclosing execution")
            enclosing = next((i for i, r in enumerate(regions) if r.loop is loop.parent), 0)
            blocks[index] = blocks[enclosing]
            continue
        chosen = candidates[0]
        mapped[id(loop)] = chosen[0]
        blocks[index] = chosen[1]
        copies.setdefault(id(chosen[0]), []).append(index)
    for group in copies.values():
        if len(group) > 1:  # ptxas unrolled the loop: the copies' sizes give the factor
            memory = {i: sum(x.is_global_load or x.is_global_store for x in regions[i].instructions) for i in group}
            sizes = memory if min(memory.values()) else {i: len(regions[i].instructions) for i in group}
            main = max(group, key=sizes.get)
            factor = max(1, round(sizes[main] / min(sizes.values())))
            for i in group:
                scales[i] = 1.0 / factor if i == main else 0.0
            notes.append(f"SASS loop at {regions[main].loop.start:#x} unrolled {factor}x by ptxas (remainder loop not counted)")
    return blocks, scales


def _by_line(instruction, same_kind) -> str | None:
    """The one tensor the TTIR accesses on the instruction's line address: with its inlining chain, then by
    the line alone."""
    line = instruction.lines[0] if instruction.lines else None
    for candidates in ([m for m in same_kind if m.lines == instruction.lines],
                       [m for m in same_kind if m.lines and m.lines[0] == line]):
        tensors = {m.tensor for m in candidates}
        if len(tensors) == 1:
            return tensors.pop()
    return None


def _region_tensors(instructions, memory_ops, block: int) -> dict[int, str | None]:
    """The tensor argument of each global load and store of a region (by address): the TTIR access of the
    same kind on its source line; failing that (the line table of a load nested in a call, or of an fp32
    load with no conversion after it, can name another line), the one tensor that accesses of that kind in
    the region's TTIR block address and no other instruction of the region was tied to."""
    found: dict[int, str | None] = {}
    for kind, test in (("load", lambda i: i.is_global_load), ("store", lambda i: i.is_global_store)):
        same_kind = [m for m in memory_ops if (m.kind == "load") == (kind == "load")]
        accesses = [i for i in instructions if test(i)]
        for instruction in accesses:
            found[instruction.address] = _by_line(instruction, same_kind)
        tied = {found[i.address] for i in accesses}
        left = {m.tensor for m in same_kind if m.block == block} - tied
        for instruction in accesses:
            if found[instruction.address] is None and len(left) == 1:
                found[instruction.address] = next(iter(left))
    return found


def _block_runs(program: ttir_reader.Program, grid) -> np.ndarray:
    programs = int(np.prod(grid))
    if not program.depends_on_program_id():
        return np.tile(np.array(program.block_runs((0, 0, 0))), (programs, 1))
    grid3 = tuple(grid) + (1,) * (3 - len(grid))
    rows = [program.block_runs((x, y, z)) for z in range(grid3[2]) for y in range(grid3[1]) for x in range(grid3[0])]
    return np.array(rows)


def cache_dir() -> Path:
    """Where the disassembly of each build is kept (keyed by Triton's hash of the build):
    `$ADAJUDGE_GPU_MODEL_CACHE`, else `~/.cache/adajudge/gpu_model`."""
    return Path(os.environ.get("ADAJUDGE_GPU_MODEL_CACHE") or Path.home() / ".cache" / "adajudge" / "gpu_model")


def _binary(compiled) -> tuple[str, dict]:
    """The build's SASS text and resource use; nvdisasm and cuobjdump run once per build, ever."""
    path = cache_dir() / f"{compiled.hash}.json"
    try:
        cached = json.loads(path.read_text())
        return cached["sass"], cached["usage"]
    except (OSError, ValueError, KeyError):
        pass
    text = aot.sass(compiled.asm["cubin"])
    usage = aot.resource_usage(compiled.asm["cubin"], text)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps({"sass": text, "usage": usage}))
    os.replace(partial, path)
    return text, usage


_parsed_builds: dict[str, tuple] = {}


def _parsed(compiled) -> tuple:
    if compiled.hash not in _parsed_builds:
        text, usage = _binary(compiled)
        _parsed_builds[compiled.hash] = sass_reader.parse(text), ttir_reader.parse(compiled.asm["ttir"]), usage
    return _parsed_builds[compiled.hash]


def profile(launch: Launch) -> KernelProfile:
    """Build `launch` for the architecture of the enclosing `aot.ahead_of_time` and profile it."""
    compiled = aot.build(launch)
    code, function, usage = _parsed(compiled)
    notes: list[str] = []
    regions = code.regions()
    blocks, scales = _map_loops(function, regions, notes)
    memory_ops = ttir_reader.memory_ops(function)
    profiles, widths = [], {}
    region_of_loop = {id(region.loop): index for index, region in enumerate(regions) if region.loop is not None}
    for region, block in zip(regions, blocks):
        counts = region.counts()
        tensors = _region_tensors(region.instructions, memory_ops, block)
        batches = [LoadBatch([(tensors[i.address], i.access_bytes * sass_reader.WARP_LANES) for i in batch.loads],
                             batch.instructions_before_use, batch.barriers_before_use,
                             region_of_loop[id(batch.across)] if batch.across is not None else None)
                   for batch in region.load_batches()]
        profiles.append(RegionProfile(region.loop.start if region.loop else None, block, counts["instructions"],
                                      counts["barriers"], counts["shared_instructions"], counts["shared_wavefronts"],
                                      batches))
        for instruction in region.instructions:
            if instruction.is_global_load or instruction.is_global_store:
                kind = "load" if instruction.is_global_load else "store"
                tensor = tensors[instruction.address] or "?"
                widths.setdefault(tensor, {}).setdefault(kind, []).append(instruction.access_bytes * 8)
    if any(i.base in ("LDGSTS", "UTMALDG", "UBLKCP") for i in code.instructions):
        notes.append("asynchronous copies (cp.async / TMA): their latency is charged as if waited on in the same loop run")
    block_runs = _block_runs(ttir_reader.Program(function, launch.arguments, launch.grid), launch.grid)
    region_runs = block_runs[:, blocks] * np.array(scales)
    requested: dict[str, np.ndarray] = {}
    for m in memory_ops:
        if m.tensor is None:
            continue
        column = 0 if m.kind == "load" else 1
        per_program = requested.setdefault(m.tensor, np.zeros((block_runs.shape[0], 2)))
        per_program[:, column] += block_runs[:, m.block] * m.bytes
        if m.kind == "atomic":
            per_program[:, 0] += block_runs[:, m.block] * m.bytes
    footprint = {name: value.numel() * value.element_size() for name, value in launch.arguments.items()
                 if hasattr(value, "element_size")}
    return KernelProfile(
        name=launch.name, grid=tuple(launch.grid), num_warps=launch.num_warps, registers=usage["registers"],
        spills=code.spills, stack_bytes=usage["stack_bytes"],
        shared_bytes=usage["shared_bytes"] + int(compiled.metadata.shared),
        regions=profiles, region_runs=region_runs, requested=requested, footprint=footprint, widths=widths, notes=notes)
