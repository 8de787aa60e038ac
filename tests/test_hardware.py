"""The CPU capability check that decides whether bfloat16 pays off."""

from __future__ import annotations

from pathlib import Path

from pixelwise import hardware


def test_bf16_instructions_are_read_from_the_cpu_flags(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 fma\n\nprocessor\t: 1\n")
    assert hardware.cpu_flags(cpuinfo) == {"fpu", "sse", "avx2", "fma"}
    assert not hardware.cpu_flags(cpuinfo) & hardware.BF16_FLAGS
    cpuinfo.write_text("flags : fpu avx512f avx512_bf16\n")
    assert "avx512_bf16" in hardware.cpu_flags(cpuinfo)
    assert hardware.cpu_flags(tmp_path / "missing") == frozenset()  # not Linux: counted as without


def test_this_machine_answers_from_its_own_cpuinfo() -> None:
    flags = hardware.cpu_flags()
    assert hardware.cpu_has_bf16() == bool({"avx512_bf16", "amx_bf16"} & flags)
