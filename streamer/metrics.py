"""Prometheus metrics, read from the show's status snapshot at scrape time (nothing added per frame)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from streamer.control import ShowStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HEALTH_VALUE = {"ok": 1.0, "degraded": 0.5}


class StatusCollector:
    def __init__(self, status: ShowStatus) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        s = self.status
        yield CounterMetricFamily("stagecast_frames", "Frames produced by the frame loop", value=s.frames)
        yield CounterMetricFamily("stagecast_late_frames", "Frames whose slot had passed (picture repeated)",
                                  value=s.late_frames)
        yield CounterMetricFamily("stagecast_render_errors", "Renders that failed (picture repeated)",
                                  value=s.render_errors)
        stage = GaugeMetricFamily("stagecast_stage_ms", "Median ms per frame of each stage", labels=["stage"])
        for name, value in s.frame_ms.items():
            stage.add_metric([name], value)
        stage.add_metric(["encode"], s.encoder.ms_median)
        yield stage
        yield GaugeMetricFamily("stagecast_encoder_queue_depth", "Frames waiting for the encoder",
                                value=s.encoder.queue_depth)
        yield GaugeMetricFamily("stagecast_turn_queue_depth", "Turns waiting in the scheduler", value=len(s.queue))
        latency = GaugeMetricFamily("stagecast_speech_latency_ms", "Turn start to first scheduled audio (recent)",
                                    labels=["quantile"])
        if s.speech_latencies_ms:
            latency.add_metric(["0.5"], statistics.median(s.speech_latencies_ms))
            latency.add_metric(["max"], max(s.speech_latencies_ms))
        yield latency
        restarts = CounterMetricFamily("stagecast_restarts", "Component restarts after failures", labels=["component"])
        for sink in s.sinks:
            restarts.add_metric([f"sink:{sink.name}"], sink.restarts)
        for name, count in s.restarts.items():
            restarts.add_metric([name], count)
        yield restarts
        yield from _sink_metrics(s)
        health = GaugeMetricFamily("stagecast_component_up", "1 ok, 0.5 degraded, 0 down", labels=["component"])
        for name, h in s.health.items():
            health.add_metric([name], HEALTH_VALUE.get(h.status.value, 0.0))
        yield health


def _sink_metrics(s: ShowStatus) -> Iterator[Metric]:
    """Every output's state, packets and drops; for a network sink also whether it is live, its
    reconnects and its seconds off air (the current outage, and all of them)."""
    state = GaugeMetricFamily("stagecast_sink_state", "1 for the state each output is in", labels=["sink", "state"])
    packets = CounterMetricFamily("stagecast_sink_packets", "Packets an output took", labels=["sink"])
    dropped = CounterMetricFamily("stagecast_sink_dropped_packets",
                                  "Packets an output never sent (a stuck sink, a link off air, a full buffer)",
                                  labels=["sink"])
    live = GaugeMetricFamily("stagecast_sink_live", "1 while a network output is on air, else 0", labels=["sink"])
    reconnects = CounterMetricFamily("stagecast_sink_reconnects", "Times a network output came back on air",
                                     labels=["sink"])
    outage = GaugeMetricFamily("stagecast_sink_outage_seconds", "Seconds a network output has been off air now "
                               "(0 while live)", labels=["sink"])
    off_air = CounterMetricFamily("stagecast_sink_off_air_seconds", "Seconds a network output was off air in all",
                                  labels=["sink"])
    for sink in s.sinks:
        state.add_metric([sink.name, sink.state], 1.0)
        packets.add_metric([sink.name], sink.packets)
        dropped.add_metric([sink.name], sink.dropped)
        if sink.link is None:
            continue
        live.add_metric([sink.name], 1.0 if sink.state == "live" else 0.0)
        reconnects.add_metric([sink.name], sink.reconnects)
        outage.add_metric([sink.name], sink.off_air_s)
        off_air.add_metric([sink.name], sink.off_air_total_s)
    yield from (state, packets, dropped, live, reconnects, outage, off_air)


def render_metrics(status: ShowStatus) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(status))
    return generate_latest(registry)
