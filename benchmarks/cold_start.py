"""Cold start: `import app` (plus the module each handler loads on its first call) against `import
boto3` alone, each in a fresh interpreter; median of several runs, time and peak RSS."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
# VmHWM (peak RSS of this process image), not ru_maxrss: after fork, ru_maxrss keeps the parent's
# peak, which would hide what the imports add.
_PROBE = """
import json, time
def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
base = peak()
start = time.perf_counter()
{imports}
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "peak_rss_kib": peak(), "added_rss_kib": peak() - base}}))
"""
CASES = {
    "boto3": "import boto3",
    "app": "import app",
    "app+publisher": "import app\nimport chalicelib.publishing.publisher",
    "app+poller": "import app\nimport chalicelib.sources.polling",
}


def _measure(imports: str) -> dict[str, float]:
    runs = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(imports=imports)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "seconds_median": statistics.median(r["seconds"] for r in runs),
        "peak_rss_mib_median": statistics.median(r["peak_rss_kib"] for r in runs) / 1024,
        "added_rss_mib_median": statistics.median(r["added_rss_kib"] for r in runs) / 1024,
    }


def run() -> dict[str, Any]:
    results = {name: _measure(imports) for name, imports in CASES.items()}
    boto3 = results["boto3"]
    for name in ("app", "app+publisher", "app+poller"):
        results[name]["time_ratio_vs_boto3"] = results[name]["seconds_median"] / boto3["seconds_median"]
        results[name]["memory_ratio_vs_boto3"] = (
            results[name]["added_rss_mib_median"] / boto3["added_rss_mib_median"]
        )
    return results
