"""The device validator in an emulated Raspberry Pi OS userland (scripts/pi_smoke.sh), on the tiny int8 export.

Marked ``pi`` and ``slow``: CI runs it with the full suite (about 5 minutes from nothing on a 2-core machine, under
2 with the cached rootfs); ``pytest -m pi`` runs it alone. It needs root, qemu-user through binfmt_misc and the
network (a Debian mirror and PyPI), and it changes this machine as the script does (apt-get installs qemu-user-static,
binfmt_misc is mounted, base rootfs tarballs are cached in ~/.cache/tfpose/pi-rootfs); TFPOSE_SKIP_PI=1 skips it.
Where this machine cannot emulate (the script's exit status 3, or a run past the time limit) the test skips with the
reason; any other failure (the pip line, an import, the validator, parity) fails the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENVIRONMENT_UNAVAILABLE = 3     # pi_smoke.sh: this machine cannot run the emulation; not a verdict on the code
TIME_LIMIT_S = 1500

pytestmark = [pytest.mark.pi, pytest.mark.slow]


@pytest.mark.timeout(1800)
def test_validator_in_emulated_pi_os_arm64_agrees_with_x86_within_one_int8_step(tiny_export, tmp_path):
    if os.environ.get("TFPOSE_SKIP_PI") == "1":
        pytest.skip("TFPOSE_SKIP_PI=1")
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("the emulated Pi userland needs root on Linux (debootstrap, chroot, mounts)")
    out = tmp_path / "pi"
    proc = subprocess.Popen(["bash", str(ROOT / "scripts/pi_smoke.sh"), "--arch", "arm64", "--model",
                             str(tiny_export["path"]), "--data", str(tiny_export["root"]), "--max-images", "4",
                             "--runs", "3", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHON": sys.executable})
    try:
        stdout, stderr = proc.communicate(timeout=TIME_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)     # the whole group, so that the script's trap unmounts its chroot
        stdout, stderr = proc.communicate(timeout=120)
        pytest.skip(f"the emulated run took over {TIME_LIMIT_S} s (a slow mirror or machine?): {stderr[-500:]}")
    tail = (stdout + stderr)[-4000:]
    if proc.returncode == ENVIRONMENT_UNAVAILABLE:
        pytest.skip(f"this machine cannot emulate a Pi userland: {stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, tail

    summary = json.loads((out / "summary.json").read_text())
    host, arm = summary["runs"][summary["host"]], summary["runs"]["arm64"]
    assert arm["arch"] == "aarch64" and arm["runtime"].startswith("ai_edge_litert"), arm
    assert arm["python"].startswith("3.11"), arm          # Raspberry Pi OS Bookworm's Python
    assert arm["vs_host"]["host_kernels"] == "XNNPACK" and arm["vs_host"]["max_int8_steps"] <= 1, arm["vs_host"]
    assert arm["vs_host"]["crops"] == 8                    # the tiny export's reference crops
    assert arm["persons"] == host["persons"] > 0           # accuracy ran on the same persons
    assert arm["parity_within_1_cell"] == pytest.approx(host["parity_within_1_cell"], abs=0.05)
    assert {"1t", "2t"} <= set(arm["latency_ms"])           # speed ran, one and two threads
