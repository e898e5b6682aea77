"""Prometheus metrics, read from the show's own counters at scrape time (nothing added per frame)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from streamer.show import Show

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ShowCollector:
    def __init__(self, show: Show) -> None:
        self.show = show

    def collect(self) -> Iterator[Metric]:
        show = self.show
        loop = show.loop.stats
        hub = show.hub.stats()
        yield CounterMetricFamily("stagecast_frames", "Frames produced by the frame loop", value=loop.frames)
        yield CounterMetricFamily("stagecast_late_frames", "Frames whose slot had passed (picture repeated)",
                                  value=loop.late_frames)
        yield CounterMetricFamily("stagecast_render_errors", "Renders that failed (picture repeated)",
                                  value=loop.render_errors)
        medians = loop.medians()
        render = GaugeMetricFamily("stagecast_stage_ms", "Median ms per frame of each stage", labels=["stage"])
        for stage, value in medians.items():
            render.add_metric([stage], value)
        render.add_metric(["encode"], hub.encode_ms_median)
        yield render
        yield GaugeMetricFamily("stagecast_encoder_queue_depth", "Frames waiting for the encoder",
                                value=hub.queue_depth)
        yield GaugeMetricFamily("stagecast_turn_queue_depth", "Turns waiting in the director",
                                value=len(show.director.queued))
        yield GaugeMetricFamily("stagecast_reply_queue_depth", "Chat messages waiting in the reply policy",
                                value=len(show.policy.waiting))
        latencies = list(show.director.speech_latencies)
        latency = GaugeMetricFamily("stagecast_speech_latency_ms", "Turn start to first scheduled audio (recent)",
                                    labels=["quantile"])
        if latencies:
            latency.add_metric(["0.5"], statistics.median(latencies))
            latency.add_metric(["max"], max(latencies))
        yield latency
        restarts = CounterMetricFamily("stagecast_restarts", "Component restarts after failures", labels=["component"])
        for name, st in hub.sinks.items():
            restarts.add_metric([f"sink:{name}"], st.restarts)
        for name, count in show.source_restarts.items():
            restarts.add_metric([f"chat:{name}"], count)
        yield restarts
        health = GaugeMetricFamily("stagecast_component_up", "1 ok, 0.5 degraded, 0 down", labels=["component"])
        for name, h in list(show.health.items()):
            health.add_metric([name], {"ok": 1.0, "degraded": 0.5}.get(h.status.value, 0.0))
        yield health


def render_metrics(show: Show) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ShowCollector(show))  # type: ignore[arg-type]
    return generate_latest(registry)
