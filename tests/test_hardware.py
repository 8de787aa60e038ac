"""What the machine offers: CPU flags read from /proc/cpuinfo, the bf16 question, devices and precisions."""

from __future__ import annotations

from pathlib import Path

import pytest

import pixelwise.hardware
from pixelwise.errors import PixelwiseError
from pixelwise.hardware import BF16_FLAGS, cpu_flags, cpu_has_bf16, resolve_precision

ZEN4 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n"
ZEN2 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2 fma avx512_bf16\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n"


@pytest.mark.parametrize(("content", "bf16"), [(ZEN4, True), (ZEN2, False), (ARM, False)])
def test_bf16_hardware_is_read_from_the_first_cpus_flags(
    content: str, bf16: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cpuinfo").write_text(content)
    flags = cpu_flags(str(tmp_path / "cpuinfo"))
    assert ("avx2" in flags) == (content != ARM)
    monkeypatch.setattr(pixelwise.hardware, "cpu_flags", lambda: flags)
    # ARM's bf16 is not one of the x86 flags PyTorch's oneDNN kernels use
    assert cpu_has_bf16() is bf16


def test_a_machine_without_cpuinfo_has_no_flags(tmp_path: Path) -> None:
    assert cpu_flags(str(tmp_path / "absent")) == frozenset()


def test_precision_follows_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_precision("auto", "cuda:0") == "fp16"
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cuda") == "bf16"
    monkeypatch.setattr(pixelwise.hardware, "cpu_has_bf16", lambda: True)
    assert resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setattr(pixelwise.hardware, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match=r"no bf16 hardware .*; running fp32") as notes:
        assert resolve_precision("bf16", "cpu") == "fp32"
    assert len(notes) == 1 and "\n" not in str(notes[0].message)
    with pytest.warns(UserWarning, match="fp16 needs a CUDA device"):
        assert resolve_precision("fp16", "cpu") == "fp32"
    with pytest.raises(PixelwiseError, match="precision 'half': choose one of auto, fp32, fp16, bf16"):
        resolve_precision("half", "cpu")


def test_this_machine_answers_from_its_own_cpuinfo() -> None:
    assert cpu_has_bf16() == bool(BF16_FLAGS & cpu_flags())
