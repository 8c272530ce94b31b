"""tfpose's TFLite side. Everything here but ``convert`` imports no TensorFlow and runs on a phone or a Raspberry Pi
with numpy, OpenCV and ai-edge-litert (or tflite-runtime): ``runtime`` (the interpreter shim), ``metadata``,
``adapters`` (tfpose and peer model families), ``benchmark`` (latency and memory) and ``validate`` (the CLI)."""
