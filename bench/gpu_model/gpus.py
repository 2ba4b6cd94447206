"""The GPUs the model predicts for, and the constants of its equations (docs/gpu_model.md).

Sources: SM count, clock and datasheet bandwidth from NVIDIA's H100 and H200 datasheets; copy bandwidth
measured device-to-device on the machines this project is lent (DESIGN.md §10: H100 ~3.0 TB/s, H200
~4.3 TB/s, read + write); the loaded DRAM latency of ~700 ns from the same review of the H100 (issue 17).
Every other constant is *(ours)*: a round figure of the order published micro-benchmarks report, never
measured here, and named in docs/gpu_model.md as a limit of the model.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Gpu:
    name: str
    multiprocessors: int
    clock_ghz: float  # SM clock the issue and latency terms use (the H100 SXM5 figure quoted in issue 17)
    datasheet_gbps: float
    copy_gbps: float  # measured device-to-device copy, read + write
    l2_gbps: float  # (ours) L2 bandwidth, all SMs together
    dram_latency_ns: float  # loaded DRAM latency seen by a load
    l2_latency_ns: float  # (ours) L2 hit latency
    registers_per_sm: int = 65536
    register_unit: int = 256  # registers are allocated per warp in units of 256 (8 per thread)
    max_warps_per_sm: int = 64
    max_ctas_per_sm: int = 32
    shared_per_sm: int = 228 * 1024
    shared_reserved_per_cta: int = 1024
    issue_per_clock: int = 4  # four schedulers, one warp instruction each per clock
    shared_wavefronts_per_clock: int = 1  # 128 bytes of shared memory per clock per SM
    barrier_cycles: int = 40  # (ours) a CTA barrier with the shared-memory round trip around it
    launch_us: float = 2.0  # (ours) a kernel's launch, ramp-up and drain, back to back on one stream

    @property
    def bytes_in_flight_needed_per_sm(self) -> float:
        """Little's law: bytes each SM must keep in flight to reach the copy bandwidth."""
        return self.copy_gbps * 1e9 * self.dram_latency_ns * 1e-9 / self.multiprocessors


GPUS = {
    "H100": Gpu("H100 SXM5 80GB", multiprocessors=132, clock_ghz=1.755, datasheet_gbps=3350.0, copy_gbps=3000.0,
                l2_gbps=7000.0, dram_latency_ns=700.0, l2_latency_ns=200.0),
    "H200": Gpu("H200 SXM 141GB", multiprocessors=132, clock_ghz=1.755, datasheet_gbps=4800.0, copy_gbps=4300.0,
                l2_gbps=7000.0, dram_latency_ns=700.0, l2_latency_ns=200.0),
}
