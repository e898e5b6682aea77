"""`stagecast render --scripts DIR_OR_GLOB --out-dir DIR` (or `--job job.yaml`): many scripts, as Ray tasks.

Progress goes to stderr, one line per finished video; stdout gets one JSON line per video (its raw frame
hashes, as the single-script render prints) and a summary. Exit 0 when every script rendered, 1 when
some failed (each failure names its script, and its line for a malformed one), 2 when nothing could start.
Without Ray the batch renders one script at a time here, after a note saying how to spread it.
"""

from __future__ import annotations

import argparse
import json
import sys

from streamer.cli.options import load


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def cmd_render_batch(args: argparse.Namespace) -> int:
    from streamer.batch.jobfile import plan_job_file
    from streamer.batch.jobs import BatchError, find_scripts, plan_jobs
    from streamer.batch.runner import INSTALL_HINT, BatchReport, ray_installed, run_local, run_ray

    if args.out_dir is None and args.job is None:
        _say("error: --scripts needs --out-dir (where the videos go)")
        return 2
    for option in ("workers", "threads", "retries"):
        value = getattr(args, option)
        if value is not None and value < (0 if option == "retries" else 1):
            _say(f"error: --{option} must be at least {0 if option == 'retries' else 1} (got {value})")
            return 2
    if args.job is not None and args.config is not None:
        _say("error: with --job the show configs come from the job file (its config: keys), not -c")
        return 2
    if args.out is not None:
        _say("error: --out is for a single --script; a batch writes into --out-dir")
        return 2
    use_ray = not args.local
    if use_ray and not ray_installed():
        if args.address is not None:
            _say(f"error: --address needs Ray, which is not installed: {INSTALL_HINT}")
            return 2
        _say(f"note: Ray is not installed, so the scripts render one at a time here. {INSTALL_HINT}")
        use_ray = False
    suffix = f".{args.format}"
    try:
        if args.job is not None:
            jobs, failures, out_dir = plan_job_file(args.job, suffix, args.out_dir, args.seed)
        else:
            config = load(args)
            if args.seed is not None:
                config.show.seed = args.seed
            out_dir = args.out_dir
            jobs, failures = plan_jobs(find_scripts(args.scripts), out_dir, config, suffix=suffix)
    except BatchError as exc:
        _say(f"error: {exc}")
        return 2
    for failure in failures:
        _say(f"error: {failure.error} (skipped; the other scripts render)")
    report = BatchReport()
    if jobs:
        if use_ray:
            try:
                report = run_ray(jobs, address=args.address, workers=args.workers, threads=args.threads,
                                 retries=args.retries, progress=_say)
            except BatchError as exc:
                _say(f"error: {exc}")
                return 2
        else:
            report = run_local(jobs, progress=_say)
    report.failures[:0] = failures
    for result in report.results:
        print(json.dumps({"out": str(out_dir / result.name), "frames": result.frames,
                          "video_sha256": result.video_sha256, "audio_sha256": result.audio_sha256,
                          "node": result.node or result.host}))
    print(json.dumps({"rendered": len(report.results), "failed": [f.error for f in report.failures],
                      "video_s": round(report.video_s, 3), "wall_s": round(report.wall_s, 3),
                      "video_s_per_wall_s": round(report.throughput, 3), "workers": report.workers}))
    _say(f"{len(report.results)} rendered, {len(report.failures)} failed; {report.video_s:.1f} s of video in "
         f"{report.wall_s:.1f} s ({report.throughput:.2f} video s per wall s)")
    return 0 if not report.failures else 1
