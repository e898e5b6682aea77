"""Moderation cost per message: the disguise-proof banned-word matching against the previous one.

Both run side by side in one process on the same texts, interleaved in rounds: the ordinary-sentence
corpus (tests/data/ordinary_sentences.txt), disguised banned words, and hostile 20,000-character
messages. The previous moderator is read from git (`--base`, default abc59de, the last commit of the
single-module moderator), so the ratio is measured, not remembered. Every message comes from a new
viewer name (the worst case: the new moderator also cleans and moderates each name once).

    python benchmarks/moderation.py [--base abc59de] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamer.config import ModerationRulesConfig  # noqa: E402
from streamer.events import ChatMessage  # noqa: E402
from streamer.moderation import Moderator  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "moderation.json"
WORDS = ["badword", "fuck", "shit", "ass", "bitch", "dick", "傻逼", "他妈的", "死ね"]


def old_moderator_class(base: str) -> Any:
    """streamer/moderation.py as it was at `base` (a single module there), imported under another name."""
    source = subprocess.run(["git", "show", f"{base}:streamer/moderation.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_moderation.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_moderation", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_moderation"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module.Moderator


def texts() -> dict[str, list[str]]:
    corpus = [line for line in (ROOT / "tests" / "data" / "ordinary_sentences.txt").read_text("utf-8").splitlines()
              if line.strip() and not line.startswith("#")]
    disguised = ["βadword", "ʙᴀᴅᴡᴏʀᴅ", "b....a....d....w....o....r....d", "b😀a😀d😀w😀o😀r😀d", "fuuuck", "f*ck",
                 "sh!t happens", "you b a d w o r d", "superbadword", "f.u.c.k.i.n.g", "傻 逼"] * 30
    hostile = ["s." * 10_000, "a4*." * 5_000, "z\u0301\u0302\u0303" * 5_000, "ab" * 10_000, "你好世界" * 5_000]
    return {"ordinary": corpus, "disguised": disguised, "hostile 20k chars": hostile}


def per_message_us(moderator: Any, items: list[str]) -> float:
    start = time.perf_counter()
    for i, text in enumerate(items):
        moderator.check_message(ChatMessage("twitch", f"v{i}", text, user_id=f"v{i}", message_id=str(i)))
    return (time.perf_counter() - start) / len(items) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="abc59de", help="commit whose streamer/moderation.py is the baseline")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    old_cls = old_moderator_class(args.base)

    def rules() -> ModerationRulesConfig:  # every message passes the per-viewer rules: only text rules cost
        return ModerationRulesConfig(banned_words=WORDS, rate_per_minute=1e9, rate_burst=10**9, copypasta_users=10**6)

    rows = []
    for name, items in texts().items():
        new_t, old_t = [], []
        for _ in range(args.rounds):  # interleaved: load on the machine hits both alike
            old_t.append(per_message_us(old_cls(rules=rules()), items))
            new_t.append(per_message_us(Moderator(rules=rules()), items))
        old_m, new_m = statistics.median(old_t), statistics.median(new_t)
        rows.append({"texts": name, "messages": len(items), "old_us": round(old_m, 1), "new_us": round(new_m, 1),
                     "new_over_old": round(new_m / old_m, 2)})
    print(f"{'texts':<20}{'messages':>10}{'old µs/msg':>14}{'new µs/msg':>14}{'new/old':>10}")
    for r in rows:
        print(f"{r['texts']:<20}{r['messages']:>10}{r['old_us']:>14}{r['new_us']:>14}{r['new_over_old']:>10}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"base": args.base, "rounds": args.rounds, "python": platform.python_version(),
                                   "machine": platform.machine(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
