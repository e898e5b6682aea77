// The co-host page's AudioWorklet: the microphone's samples, mixed to mono, at 16 kHz, posted to the
// page in frames of `frame` samples with their RMS and peak. In a 16 kHz AudioContext nothing is
// resampled; in a context that runs at the device's rate (a browser that cannot capture into a 16 kHz
// context) each output sample is the mean of the input samples it covers (a box filter, enough for speech).
"use strict";

class PcmFrames extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.target = opts.targetRate || 16000;
    this.frame = opts.frame || 800;
    this.step = sampleRate / this.target;  // input samples per output sample (sampleRate: the context's)
    this.buffer = new Float32Array(this.frame);
    this.fill = 0;
    this.acc = 0;
    this.count = 0;
    this.pos = 0;
  }

  emit(value) {
    this.buffer[this.fill++] = value;
    if (this.fill < this.frame) return;
    let sum = 0;
    let peak = 0;
    for (let i = 0; i < this.frame; i++) {
      const v = this.buffer[i];
      sum += v * v;
      const a = v < 0 ? -v : v;
      if (a > peak) peak = a;
    }
    const samples = this.buffer;
    this.port.postMessage({ samples, rms: Math.sqrt(sum / this.frame), peak }, [samples.buffer]);
    this.buffer = new Float32Array(this.frame);
    this.fill = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;  // no microphone connected (yet)
    const channels = input.length;
    const length = input[0].length;
    for (let i = 0; i < length; i++) {
      let x = input[0][i];
      if (channels > 1) {
        for (let c = 1; c < channels; c++) x += input[c][i];
        x /= channels;
      }
      if (this.step === 1) { this.emit(x); continue; }
      this.acc += x;
      this.count += 1;
      this.pos += 1;
      if (this.pos >= this.step) {
        this.pos -= this.step;
        this.emit(this.acc / this.count);
        this.acc = 0;
        this.count = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-frames", PcmFrames);
